package h2

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/spacerouter/spacerouter/router/h1"
)

// FuzzHeaderBlock decodes arbitrary header blocks as a request head and
// checks what is accepted: a head without HeadErr has a token method, a
// target, only valid lower-case names and values, and one cookie field.
func FuzzHeaderBlock(f *testing.F) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][]string{
		reqFields("GET", "/"),
		reqFields("POST", "/x?y", "content-length", "3", "cookie", "a=1", "cookie", "b=2"),
		reqFields("GET", "/", "te", "trailers", "expect", "100-continue", "host", "example.test"),
		{":method", "CONNECT", ":authority", "a:443"},
		reqFields("OPTIONS", "*", "Upper", "x"),
	} {
		hb.Reset()
		for i := 0; i < len(kv); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		f.Add(append([]byte(nil), hb.Bytes()...), false)
	}
	f.Fuzz(func(t *testing.T, block []byte, end bool) {
		c := NewConn(nil, &Config{Limits: h1.Limits{Field: 256, HeadersSize: 1024, FieldCount: 20}}, nil)
		c.stopped = true // nothing is written
		var flags http2.Flags = http2.FlagHeadersEndHeaders
		if end {
			flags |= http2.FlagHeadersEndStream
		}
		c.sawSettings = true
		err := c.onHeaders(http2.FrameHeader{Type: http2.FrameHeaders, Flags: flags, StreamID: 1, Length: uint32(len(block))}, block)
		var ce connError
		if err != nil {
			if !errors.As(err, &ce) {
				t.Fatalf("not a connection error: %v", err)
			}
			return
		}
		if len(c.toStart) != 1 {
			t.Fatalf("%d streams decoded", len(c.toStart))
		}
		s := c.toStart[0]
		if s.HeadErr() != nil {
			return
		}
		r := s.Request()
		if !isToken(string(r.Method)) {
			t.Fatalf("accepted method %q", r.Method)
		}
		if string(r.Method) != "CONNECT" && !validTarget(string(r.Target)) {
			t.Fatalf("accepted target %q", r.Target)
		}
		cookies := 0
		for _, fl := range r.Fields {
			if !validName(string(fl.Name)) || !validValue(string(fl.Value)) {
				t.Fatalf("accepted field %q: %q", fl.Name, fl.Value)
			}
			if fl.Known == h1.KnownCookie {
				cookies++
			}
			if fl.Known != knownOf(string(fl.Name)) {
				t.Fatalf("field %q classified %v", fl.Name, fl.Known)
			}
		}
		if cookies > 1 {
			t.Fatalf("%d cookie fields", cookies)
		}
	})
}

// FuzzConn feeds arbitrary bytes after the preface to a Conn and checks
// that it ends (no panic, no hang) once the client closes.
func FuzzConn(f *testing.F) {
	var seed bytes.Buffer
	fr := http2.NewFramer(&seed, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", "/"}, {"content-length", "4"}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	fr.WriteData(1, true, []byte("body"))
	fr.WriteWindowUpdate(0, 100)
	fr.WritePing(false, [8]byte{1})
	fr.WriteRSTStream(3, http2.ErrCodeCancel)
	f.Add(seed.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		c := NewConn(server, &Config{PrefaceTimeout: time.Second}, handlerFunc(echo))
		done := make(chan struct{})
		go func() {
			c.Serve()
			close(done)
		}()
		go func() { // drain what the server writes
			var b [4096]byte
			for {
				if _, err := client.Read(b[:]); err != nil {
					return
				}
			}
		}()
		client.SetWriteDeadline(time.Now().Add(time.Second))
		client.Write([]byte(http2.ClientPreface))
		client.Write(data)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return")
		}
	})
}
