package h2

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/router/h1"
)

// seen is what a handler saw of a request, copied before Close.
type seen struct {
	method, target, host string
	hasHost              bool
	fields               []string // "name: value"
	known                []h1.Known
	hop                  []bool
	cl                   int64
	chunked, expect100   bool
	minor                int
	headErr              error
	body                 string
	bodyErr              error
}

// capture answers like echo and reports what it saw on ch.
func capture(ch chan<- seen) handlerFunc {
	return func(s *Stream) {
		defer s.Close()
		r := s.Request()
		sn := seen{
			method: string(r.Method), target: string(r.Target), host: string(r.Host), hasHost: r.HasHost,
			cl: r.ContentLength, chunked: r.Chunked, expect100: r.Expect100, minor: r.Minor, headErr: s.HeadErr(),
		}
		for _, f := range r.Fields {
			sn.fields = append(sn.fields, string(f.Name)+": "+string(f.Value))
			sn.known = append(sn.known, f.Known)
			sn.hop = append(sn.hop, f.Hop)
		}
		if !answerRefused(s) {
			if r.Expect100 {
				s.Interim(100, nil)
			}
			b, err := io.ReadAll(s)
			sn.body, sn.bodyErr = string(b), err
			if err == nil {
				s.Send(&Head{Status: 200, ContentLength: 2}, []byte("ok"), true)
			}
		}
		ch <- sn
	}
}

func waitSeen(t *testing.T, ch <-chan seen) seen {
	t.Helper()
	select {
	case sn := <-ch:
		return sn
	case <-time.After(5 * time.Second):
		t.Fatal("handler never ran")
		return seen{}
	}
}

func TestRequestHead(t *testing.T) {
	ch := make(chan seen, 1)
	srv := startServer(t, &Config{}, capture(ch))
	c := dialRaw(t, srv)
	c.handshake()

	t.Run("get", func(t *testing.T) {
		id := c.headers(true, reqFields("GET", "/a?b=c", "user-agent", "test", "accept", "*/*", "x-request-id", "abc")...)
		c.flush()
		sn := waitSeen(t, ch)
		require.NoError(t, sn.headErr)
		assert.Equal(t, "GET", sn.method)
		assert.Equal(t, "/a?b=c", sn.target)
		assert.Equal(t, "example.test", sn.host)
		assert.True(t, sn.hasHost)
		assert.Equal(t, []string{"user-agent: test", "accept: */*", "x-request-id: abc"}, sn.fields)
		assert.Equal(t, []h1.Known{h1.KnownOther, h1.KnownOther, h1.KnownXRequestID}, sn.known)
		assert.Equal(t, int64(-1), sn.cl)
		assert.False(t, sn.chunked)
		assert.Equal(t, 1, sn.minor)
		rs, _ := c.until(done(id))
		assert.Equal(t, 200, rs[id].status)
	})
	t.Run("content-length body", func(t *testing.T) {
		id := c.headers(false, reqFields("POST", "/p", "content-length", "5")...)
		c.fr.WriteData(id, false, []byte("he"))
		c.fr.WriteData(id, true, []byte("llo"))
		c.flush()
		sn := waitSeen(t, ch)
		require.NoError(t, sn.headErr)
		assert.Equal(t, int64(5), sn.cl)
		assert.False(t, sn.chunked)
		assert.Equal(t, "hello", sn.body)
		assert.Equal(t, []bool{true}, sn.hop, "content-length is framing, not forwarded")
		rs, _ := c.until(done(id))
		assert.Equal(t, 200, rs[id].status)
	})
	t.Run("body of unknown length", func(t *testing.T) {
		id := c.headers(false, reqFields("POST", "/p")...)
		c.fr.WriteDataPadded(id, true, []byte("padded"), make([]byte, 20))
		c.flush()
		sn := waitSeen(t, ch)
		assert.Equal(t, int64(-1), sn.cl)
		assert.True(t, sn.chunked)
		assert.Equal(t, "padded", sn.body)
		c.until(done(id))
	})
	t.Run("cookies joined", func(t *testing.T) {
		id := c.headers(true, reqFields("GET", "/", "cookie", "a=1", "x-y", "z", "cookie", "b=2", "cookie", "c=3")...)
		c.flush()
		sn := waitSeen(t, ch)
		require.NoError(t, sn.headErr)
		assert.Equal(t, []string{"cookie: a=1; b=2; c=3", "x-y: z"}, sn.fields)
		assert.Equal(t, []h1.Known{h1.KnownCookie, h1.KnownOther}, sn.known)
		c.until(done(id))
	})
	t.Run("host field without authority", func(t *testing.T) {
		id := c.headers(true, ":method", "GET", ":scheme", "http", ":path", "/", "host", "h.test:8080")
		c.flush()
		sn := waitSeen(t, ch)
		require.NoError(t, sn.headErr)
		assert.Equal(t, "h.test:8080", sn.host)
		assert.Equal(t, []h1.Known{h1.KnownHost}, sn.known)
		c.until(done(id))
	})
	t.Run("authority and equal host", func(t *testing.T) {
		id := c.headers(true, reqFields("GET", "/", "host", "EXAMPLE.test")...)
		c.flush()
		sn := waitSeen(t, ch)
		require.NoError(t, sn.headErr)
		assert.Equal(t, "example.test", sn.host)
		c.until(done(id))
	})
	t.Run("expect 100-continue", func(t *testing.T) {
		id := c.headers(false, reqFields("PUT", "/u", "expect", "100-continue", "content-length", "3")...)
		c.flush()
		rs, _ := c.until(func(rs map[uint32]*response, _ *http2.GoAwayFrame) bool {
			return rs[id] != nil && len(rs[id].interim) > 0
		})
		assert.Equal(t, []int{100}, rs[id].interim)
		c.fr.WriteData(id, true, []byte("abc"))
		c.flush()
		sn := waitSeen(t, ch)
		assert.True(t, sn.expect100)
		assert.Equal(t, "abc", sn.body)
		rs, _ = c.until(done(id))
		assert.Equal(t, 200, rs[id].status)
	})
	t.Run("te trailers and CONNECT and OPTIONS *", func(t *testing.T) {
		for _, kv := range [][]string{
			reqFields("GET", "/", "te", "trailers"),
			{":method", "CONNECT", ":authority", "example.test:443"},
			reqFields("OPTIONS", "*"),
		} {
			id := c.headers(true, kv...)
			c.flush()
			sn := waitSeen(t, ch)
			require.NoError(t, sn.headErr, "%v", kv)
			c.until(done(id))
		}
	})
	t.Run("trailers dropped", func(t *testing.T) {
		id := c.headers(false, reqFields("POST", "/t", "trailer", "x-sum")...)
		c.fr.WriteData(id, false, []byte("body"))
		c.headersOn(id, true, "x-sum", "1234")
		c.flush()
		sn := waitSeen(t, ch)
		require.NoError(t, sn.bodyErr)
		assert.Equal(t, "body", sn.body)
		rs, _ := c.until(done(id))
		assert.Equal(t, 200, rs[id].status)
	})
	t.Run("trailers without END_STREAM", func(t *testing.T) {
		id := c.headers(false, reqFields("POST", "/t")...)
		c.fr.WriteData(id, false, []byte("body"))
		c.headersOn(id, false, "x-sum", "1")
		c.flush()
		sn := waitSeen(t, ch)
		assert.ErrorIs(t, sn.bodyErr, ErrBodyLength)
		rs, _ := c.until(done(id))
		assert.Equal(t, http2.ErrCodeProtocol, rs[id].rst)
	})
	t.Run("pseudo-header in trailers", func(t *testing.T) {
		id := c.headers(false, reqFields("POST", "/t")...)
		c.fr.WriteData(id, false, []byte("body"))
		c.headersOn(id, true, ":path", "/x")
		c.flush()
		sn := waitSeen(t, ch)
		assert.ErrorIs(t, sn.bodyErr, ErrBodyLength)
		rs, _ := c.until(done(id))
		assert.Equal(t, http2.ErrCodeProtocol, rs[id].rst)
	})
}

func TestMalformedHead(t *testing.T) {
	ch := make(chan seen, 1)
	srv := startServer(t, &Config{}, capture(ch))
	c := dialRaw(t, srv)
	c.handshake()
	cases := map[string][]string{
		"connection":            reqFields("GET", "/", "connection", "keep-alive"),
		"keep-alive":            reqFields("GET", "/", "keep-alive", "5"),
		"proxy-connection":      reqFields("GET", "/", "proxy-connection", "close"),
		"transfer-encoding":     reqFields("GET", "/", "transfer-encoding", "chunked"),
		"upgrade":               reqFields("GET", "/", "upgrade", "h2c"),
		"te gzip":               reqFields("GET", "/", "te", "gzip"),
		"te trailers, gzip":     reqFields("GET", "/", "te", "trailers, gzip"),
		"upper-case name":       reqFields("GET", "/", "X-Foo", "bar"),
		"space in name":         reqFields("GET", "/", "x foo", "bar"),
		"empty name":            reqFields("GET", "/", "", "bar"),
		"CR in value":           reqFields("GET", "/", "x-a", "b\rc"),
		"LF in value":           reqFields("GET", "/", "x-a", "b\nc"),
		"NUL in value":          reqFields("GET", "/", "x-a", "b\x00c"),
		"control in value":      reqFields("GET", "/", "x-a", "b\x01c"),
		"leading space":         reqFields("GET", "/", "x-a", " b"),
		"trailing tab":          reqFields("GET", "/", "x-a", "b\t"),
		"empty :path":           {":method", "GET", ":scheme", "https", ":path", "", ":authority", "a"},
		"no :path":              {":method", "GET", ":scheme", "https", ":authority", "a"},
		"no :method":            {":scheme", "https", ":path", "/", ":authority", "a"},
		"no :scheme":            {":method", "GET", ":path", "/", ":authority", "a"},
		"two :method":           {":method", "GET", ":method", "GET", ":scheme", "https", ":path", "/"},
		"two :path":             {":method", "GET", ":scheme", "https", ":path", "/", ":path", "/"},
		"two :scheme":           {":method", "GET", ":scheme", "https", ":scheme", "https", ":path", "/"},
		"two :authority":        {":method", "GET", ":scheme", "https", ":path", "/", ":authority", "a", ":authority", "a"},
		":status":               append(reqFields("GET", "/"), ":status", "200"),
		"unknown pseudo":        append([]string{":foo", "bar"}, reqFields("GET", "/")...),
		"pseudo after regular":  {":method", "GET", ":scheme", "https", "x-a", "b", ":path", "/"},
		":path * on GET":        reqFields("GET", "*"),
		":path without slash":   reqFields("GET", "x"),
		"space in :path":        reqFields("GET", "/a b"),
		"bad method":            reqFields("GE T", "/"),
		"two content-length":    reqFields("GET", "/", "content-length", "0", "content-length", "0"),
		"bad content-length":    reqFields("GET", "/", "content-length", "1x"),
		"two host":              reqFields("GET", "/", "host", "example.test", "host", "example.test"),
		"host differs":          reqFields("GET", "/", "host", "other.test"),
		"userinfo in authority": {":method", "GET", ":scheme", "https", ":path", "/", ":authority", "u@a.test"},
		"CONNECT no authority":  {":method", "CONNECT"},
		"CONNECT with :path":    {":method", "CONNECT", ":authority", "a:1", ":path", "/", ":scheme", "https"},
	}
	for name, kv := range cases {
		t.Run(name, func(t *testing.T) {
			id := c.headers(true, kv...)
			c.flush()
			sn := waitSeen(t, ch)
			require.ErrorIs(t, sn.headErr, h1.ErrMalformed)
			rs, ga := c.until(done(id))
			require.Nil(t, ga)
			assert.True(t, rs[id].reset)
			assert.Equal(t, http2.ErrCodeProtocol, rs[id].rst)
		})
	}
	// The connection is still fine.
	id := c.headers(true, reqFields("GET", "/after")...)
	c.flush()
	require.NoError(t, waitSeen(t, ch).headErr)
	rs, _ := c.until(done(id))
	assert.Equal(t, 200, rs[id].status)
}

func TestHeadLimits(t *testing.T) {
	lim := h1.Limits{StartLine: 64, Method: 8, FieldName: 16, Field: 64, Cookie: 80, HeadersSize: 200, FieldCount: 5}
	ch := make(chan seen, 1)
	srv := startServer(t, &Config{Limits: lim}, capture(ch))
	c := dialRaw(t, srv)
	c.handshake()
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name   string
		kv     []string
		want   error
		status int
	}{
		{"method", reqFields("ABCDEFGHI", "/"), h1.ErrMethodTooLong, 400},
		{"path", reqFields("GET", "/"+long(70)), h1.ErrLineTooLong, 414},
		{"method and path", reqFields("OPTIONS", "/"+long(56)), h1.ErrLineTooLong, 414},
		{"name", reqFields("GET", "/", long(17), "v"), h1.ErrHeaderTooLong, 400},
		{"field", reqFields("GET", "/", "x-a", long(60)), h1.ErrHeaderTooLong, 400},
		{"cookie", reqFields("GET", "/", "cookie", long(73)), h1.ErrCookieTooLong, 400},
		{"joined cookie", reqFields("GET", "/", "cookie", long(30), "cookie", long(30), "cookie", long(14)), h1.ErrCookieTooLong, 400},
		{"count", reqFields("GET", "/", "a", "1", "b", "1", "c", "1", "d", "1", "e", "1", "f", "1"), h1.ErrHeaderTooLong, 400},
		{"total", reqFields("GET", "/", "x-a", long(50), "x-b", long(50), "x-c", long(50), "x-d", long(50)), h1.ErrHeaderTooLong, 400},
		{"expect", reqFields("GET", "/", "expect", "something"), h1.ErrUnsupportedExpect, 417},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := c.headers(true, tc.kv...)
			c.flush()
			sn := waitSeen(t, ch)
			require.ErrorIs(t, sn.headErr, tc.want)
			rs, ga := c.until(done(id))
			require.Nil(t, ga, "a limit is a stream-level refusal")
			assert.Equal(t, tc.status, rs[id].status)
		})
	}
	t.Run("within the limits", func(t *testing.T) {
		id := c.headers(true, reqFields("GET", "/", "cookie", long(30), "cookie", long(30), "x-a", long(50))...)
		c.flush()
		require.NoError(t, waitSeen(t, ch).headErr)
		rs, _ := c.until(done(id))
		assert.Equal(t, 200, rs[id].status)
	})
}

// TestLargeHeader: a 100 KB header (CONTINUATION frames) is served within
// the default limits, and refused at stream level (400) over a smaller
// one; the connection survives both (the issue: x/net reset the
// connection with no line).
func TestLargeHeader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		field int
		want  error
	}{
		{"default limits", 0, nil},
		{"over the field limit", 64 << 10, h1.ErrHeaderTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan seen, 1)
			lim := DefaultLimits
			if tc.field > 0 {
				lim.Field = tc.field
			}
			srv := startServer(t, &Config{Limits: lim}, capture(ch))
			c := dialRaw(t, srv)
			c.handshake()
			block := c.block(reqFields("GET", "/big", "x-big", strings.Repeat("b", 100<<10), "x-after", "1")...)
			id := c.next
			c.next += 2
			c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:16000], EndStream: true})
			for rest := block[16000:]; len(rest) > 0; {
				n := min(len(rest), 16000)
				c.fr.WriteContinuation(id, n == len(rest), rest[:n])
				rest = rest[n:]
			}
			c.flush()
			sn := waitSeen(t, ch)
			rs, ga := c.until(done(id))
			require.Nil(t, ga)
			if tc.want == nil {
				require.NoError(t, sn.headErr)
				assert.Len(t, sn.fields, 2)
				assert.Equal(t, 200, rs[id].status)
			} else {
				require.ErrorIs(t, sn.headErr, tc.want)
				assert.Equal(t, 400, rs[id].status)
			}
			id = c.headers(true, reqFields("GET", "/next")...)
			c.flush()
			require.NoError(t, waitSeen(t, ch).headErr)
			rs, _ = c.until(done(id))
			assert.Equal(t, 200, rs[id].status)
		})
	}
}

func TestBodyLength(t *testing.T) {
	ch := make(chan seen, 1)
	srv := startServer(t, &Config{}, capture(ch))
	c := dialRaw(t, srv)
	c.handshake()
	cases := []struct {
		name string
		cl   string
		data []string // the last one ends the stream; none: HEADERS ends it
		want error
	}{
		{"shorter", "5", []string{"abcd"}, ErrBodyLength},
		{"longer", "3", []string{"ab", "cd"}, ErrBodyLength},
		{"non-zero on an ending HEADERS", "5", nil, ErrBodyLength},
		{"zero on an ending HEADERS", "0", nil, nil},
		{"exact", "4", []string{"ab", "cd"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := c.headers(len(tc.data) == 0, reqFields("POST", "/", "content-length", tc.cl)...)
			for i, d := range tc.data {
				c.fr.WriteData(id, i == len(tc.data)-1, []byte(d))
			}
			c.flush()
			sn := waitSeen(t, ch)
			require.NoError(t, sn.headErr)
			rs, _ := c.until(done(id))
			if tc.want != nil {
				require.ErrorIs(t, sn.bodyErr, tc.want)
				assert.Equal(t, http2.ErrCodeProtocol, rs[id].rst, "reset at once with PROTOCOL_ERROR")
				return
			}
			require.NoError(t, sn.bodyErr)
			assert.Equal(t, 200, rs[id].status)
		})
	}
}

// TestInterimAndSend covers Interim and Send misuse.
func TestInterimAndSend(t *testing.T) {
	errs := make(chan error, 8)
	srv := startServer(t, &Config{}, handlerFunc(func(s *Stream) {
		defer s.Close()
		errs <- s.Send(nil, []byte("x"), false)
		errs <- s.Interim(101, nil)
		errs <- s.Interim(103, nil)
		errs <- s.Send(&Head{Status: 204, ContentLength: -1}, nil, true)
		errs <- s.Send(nil, nil, true)
		errs <- s.Interim(100, nil)
	}))
	c := dialRaw(t, srv)
	c.handshake()
	id := c.headers(true, reqFields("GET", "/")...)
	c.flush()
	rs, _ := c.until(done(id))
	assert.Equal(t, []int{103}, rs[id].interim)
	assert.Equal(t, 204, rs[id].status)
	want := []error{errNoHead, errBadStatus, nil, nil, errStreamDone, errStreamDone}
	for i, w := range want {
		err := <-errs
		if w == nil {
			assert.NoError(t, err, "call %d", i)
		} else {
			assert.ErrorIs(t, err, w, "call %d", i)
		}
	}
}

// TestHandlerPanic: a panicking handler resets its stream, the panic is
// reported, and the connection goes on.
func TestHandlerPanic(t *testing.T) {
	errc := make(chan error, 1)
	cfg := &Config{OnConnError: func(err error) { errc <- err }}
	srv := startServer(t, cfg, handlerFunc(func(s *Stream) {
		if string(s.Request().Target) == "/panic" {
			panic("boom")
		}
		echo(s)
	}))
	c := dialRaw(t, srv)
	c.handshake()
	id := c.headers(true, reqFields("GET", "/panic")...)
	c.flush()
	rs, _ := c.until(done(id))
	assert.Equal(t, http2.ErrCodeInternal, rs[id].rst)
	require.ErrorContains(t, <-errc, "boom")
	id = c.headers(true, reqFields("GET", "/ok")...)
	c.flush()
	rs, _ = c.until(done(id))
	assert.Equal(t, 200, rs[id].status)
}
