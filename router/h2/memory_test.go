package h2

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
)

// memSnapshot is the live heap and goroutine stacks after a full GC.
func memSnapshot() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse
}

// idleClient opens a client connection that sent the preface, SETTINGS and
// (when request) one GET, read the answer, and stays open.
func idleClient(t testing.TB, addr string, useTLS, request bool, buf []byte) net.Conn {
	var nc net.Conn
	var err error
	if useTLS {
		nc, err = tls.Dial("tcp", addr, clientTLSConfig())
	} else {
		nc, err = net.Dial("tcp", addr)
	}
	require.NoError(t, err)
	out := []byte(http2.ClientPreface)
	out = appendFrameHeader(out, 0, http2.FrameSettings, 0, 0)
	out = appendFrameHeader(out, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
	if request {
		// GET / (static table indexes) on stream 1.
		block := []byte{0x82, 0x87, 0x84, 0x41, 0x8a, 0x08, 0x9d, 0x5c, 0x0b, 0x81, 0x70, 0xdc, 0x78, 0x0f, 0x03}
		out = appendFrameHeader(out, len(block), http2.FrameHeaders, http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream, 1)
		out = append(out, block...)
	}
	_, err = nc.Write(out)
	require.NoError(t, err)
	if request {
		readUntilEnd(t, nc, buf)
	}
	return nc
}

// readUntilEnd reads frames until one ends a stream.
func readUntilEnd(t testing.TB, nc net.Conn, buf []byte) {
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, w := 0, 0
	for {
		for w-r >= 9 {
			n := int(binary.BigEndian.Uint32(buf[r:]) >> 8)
			if w-r < 9+n {
				break
			}
			t, f := http2.FrameType(buf[r+3]), http2.Flags(buf[r+4])
			r += 9 + n
			if (t == http2.FrameData || t == http2.FrameHeaders) && f.Has(http2.FlagDataEndStream) {
				return
			}
		}
		copy(buf, buf[r:w])
		w -= r
		r = 0
		m, err := nc.Read(buf[w:])
		require.NoError(t, err)
		w += m
	}
}

// holdServer accepts connections (with the TLS handshake when useTLS) and
// parks a goroutine reading each: an accepted connection without HTTP/2,
// the baseline of the idle memory test.
func holdServer(t testing.TB, useTLS bool) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if useTLS {
				nc = tls.Server(nc, serverTLSConfig())
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				var b [64]byte
				for {
					if _, err := nc.Read(b[:]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// TestIdleMemory measures what an idle HTTP/2 connection holds: 1000
// connections on loopback, each after one request, against the same
// number of accepted connections with a goroutine blocked reading (and,
// for TLS, the handshake done). The difference is this package's share;
// an idle Conn must hold no stream, body, read or write buffer, and only
// its reader goroutine.
func TestIdleMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow; not under -short or -race")
	}
	const n = 1000
	buf := make([]byte, 64<<10)
	for _, mode := range []string{"h2c", "tls"} {
		t.Run(mode, func(t *testing.T) {
			useTLS := mode == "tls"
			measure := func(addr string, request bool) (uint64, uint64, []net.Conn) {
				h0, s0 := memSnapshot()
				var clients []net.Conn
				for range n {
					clients = append(clients, idleClient(t, addr, useTLS, request, buf))
				}
				return h0, s0, clients
			}

			addr, stop := holdServer(t, useTLS)
			h0, s0, clients := measure(addr, false)
			h1, s1 := memSnapshot()
			baseHeap, baseStack := float64(h1-h0)/n, float64(s1-s0)/n
			for _, c := range clients {
				c.Close()
			}
			stop()

			var opts []serverOpt
			if useTLS {
				opts = append(opts, withTLS)
			}
			srv := startServer(t, &Config{IdleTimeout: time.Hour}, handlerFunc(benchHandler), opts...)
			h0, s0, clients = measure(srv.addr, true)
			var conns []*Conn
			for range n {
				conns = append(conns, srv.nextConn())
			}
			waitIdle(t, conns)
			h1, s1 = memSnapshot()
			heap, stack := float64(h1-h0)/n, float64(s1-s0)/n
			t.Logf("%s: per idle connection: heap %.0f B, stacks %.0f B (baseline without HTTP/2: heap %.0f B, stacks %.0f B): HTTP/2 adds %.0f B",
				mode, heap, stack, baseHeap, baseStack, heap+stack-baseHeap-baseStack)
			for _, c := range clients {
				c.Close()
			}
			require.Less(t, heap+stack-baseHeap-baseStack, 8192.0, "bytes an idle connection adds")
		})
	}
}

// waitIdle waits until every Conn is idle: no stream, no handler, no
// writer, no buffer.
func waitIdle(t testing.TB, conns []*Conn) {
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range conns {
		for {
			c.mu.Lock()
			idle := c.idleLocked() && !c.writerRunning && c.out == nil && c.spare == nil && c.br.buf == nil
			c.mu.Unlock()
			if idle {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("connections never went idle")
			}
			runtime.Gosched()
		}
	}
}
