package router

// The relay over TLS dyno connections (issue 12): bodies both ways,
// streamed and buffered, to a net/http server over TLS, from HTTP/1 and
// HTTP/2 clients.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
)

// httpTLSDyno is a net/http server over TLS with cert: /echo answers the
// request body, /big?n=N answers N bytes in pieces, chunked. conns counts
// the connections it accepted.
type httpTLSDyno struct {
	addr  string
	conns atomic.Int32
}

func startHTTPTLSDyno(t testing.TB, cert tls.Certificate) *httpTLSDyno {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	d := &httpTLSDyno{addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		piece := bytes.Repeat([]byte("0123456789abcdef"), 1024)
		for n > 0 {
			k := min(n, len(piece))
			w.Write(piece[:k])
			w.(http.Flusher).Flush()
			n -= k
		}
	})
	srv := &http.Server{Handler: mux, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			d.conns.Add(1)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return d
}

// TestDynoTLSRelay: request and response bodies, with a length or
// without (chunked), small and over the relay's buffers, go through a
// verify-full TLS dyno connection whole, from HTTP/1, HTTP/1 over TLS and
// HTTP/2 clients; the dyno's one connection serves them all.
func TestDynoTLSRelay(t *testing.T) {
	ca := newDynoCA(t, "dynos")
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	cert := ca.issue(t, dynoCert{names: []string{"localhost"}})
	upload := bytes.Repeat([]byte("upload-"), 40000) // 280 kB
	runModes(t, func(t *testing.T, m mode) {
		d := startHTTPTLSDyno(t, cert)
		_, port, _ := net.SplitHostPort(d.addr)
		mr := startModeRouter(t, m, "", dynoTLSYAML(config.DynoTLSVerifyFull, "", trust), "localhost:"+port)
		for i, rq := range []mreq{
			{method: "POST", path: "/echo?small", body: []byte("hello")},
			{method: "POST", path: "/echo?length", body: upload},
			{method: "POST", path: "/echo?nolength", body: upload, noLength: true},
		} {
			r := mr.do(t, rq)
			require.Equal(t, 200, r.status, "%s: line %q", rq.path, r.line)
			assert.Equal(t, "end", r.end, rq.path)
			assert.True(t, bytes.Equal(rq.body, r.body), "%s: the body came back changed (%d bytes, want %d)", rq.path, len(r.body), len(rq.body))
			assert.NotContains(t, r.line, "code=", "request %d", i)
			mr.assertLine(t, r.line)
			mr.waitTLSIdle(t, "localhost:"+port, 1)
		}
		for _, n := range []int{10, 3 << 20} {
			path := fmt.Sprintf("/big?n=%d", n)
			r := mr.do(t, mreq{method: "GET", path: path})
			require.Equal(t, 200, r.status, "%s: line %q", path, r.line)
			assert.Equal(t, "end", r.end, path)
			assert.Len(t, r.body, n, path)
			assert.Contains(t, r.line, " bytes="+strconv.Itoa(n)+" ", path)
			mr.waitTLSIdle(t, "localhost:"+port, 1)
		}
		assert.Equal(t, int32(1), d.conns.Load(), "one TLS dyno connection, reused for every request")
	})
}

// TestDynoTLSUpgradeTunnel: a WebSocket-style upgrade to a TLS dyno is
// tunnelled both ways through TLS, and the line is written when the
// tunnel closes.
func TestDynoTLSUpgradeTunnel(t *testing.T) {
	t.Parallel()
	ca := newDynoCA(t, "dynos")
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	d := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"localhost"}}), func(c net.Conn) {
		br := bufio.NewReader(c)
		if readRequestHead(br) == "" {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br) // echo until the router closes
	})
	tr := startRouter(t, oneApp(dynoTLSYAML(config.DynoTLSVerifyFull, "", trust), "localhost:"+d.port()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	const sent = "GET /chat HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	_, err := io.WriteString(c, sent)
	require.NoError(t, err)
	cbr := bufio.NewReader(c)
	resp, err := http.ReadResponse(cbr, &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)
	big := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	go c.Write(big)
	back := make([]byte, len(big))
	_, err = io.ReadFull(cbr, back)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, back), "256 KiB through the tunnel and the TLS dyno must come back identical")
	c.Close()
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, " dyno=web.1 ")
	assert.Contains(t, line, " status=101 bytes="+strconv.Itoa(len(big))+" ")
	d.waitEnded(t, "the tunnel closed: the dyno's connection closes too")
}
