package h1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// respSummary is what a test compares of a parsed Response; Fields as in
// reqSummary.
type respSummary struct {
	Minor          int
	Status         int
	Reason         string
	ContentLength  int64
	Chunked        bool
	Close          bool
	ConnUpgrade    bool
	ContentType    string
	HasContentType bool
	Fields         []string
}

func summarizeResponse(r *Response) respSummary {
	s := respSummary{
		Minor:          r.Minor,
		Status:         r.Status,
		Reason:         string(r.Reason),
		ContentLength:  r.ContentLength,
		Chunked:        r.Chunked,
		Close:          r.Close,
		ConnUpgrade:    r.ConnUpgrade,
		ContentType:    string(r.ContentType),
		HasContentType: r.HasContentType,
	}
	for _, f := range r.Fields {
		s.Fields = append(s.Fields, fieldString(f))
	}
	return s
}

// ok200 is the summary of "HTTP/1.1 200 OK" with the given fields.
func ok200(fields ...string) respSummary {
	return respSummary{Minor: 1, Status: 200, Reason: "OK", ContentLength: -1, Fields: fields}
}

// resp200 builds "HTTP/1.1 200 OK\r\n" + fields (CRLF terminated) + "\r\n".
func resp200(fields ...string) string {
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\n")
	for _, f := range fields {
		b.WriteString(f)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

type respCase struct {
	name string
	in   string
	lim  func(*Limits)
	err  error
	want respSummary
	rest string
}

func responseCases() []respCase {
	with := func(f func(*respSummary)) respSummary {
		s := ok200()
		f(&s)
		return s
	}
	a := func(n int) string { return strings.Repeat("a", n) }
	var sixteen []string
	for i := range 16 {
		sixteen = append(sixteen, fmt.Sprintf("X-%02d: v", i))
	}
	hsFields := "Server: x\r\nX-Pad: " + a(30) + "\r\n"
	return []respCase{
		// Status lines.
		{name: "ok with body", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
			want: with(func(s *respSummary) {
				s.ContentLength = 2
				s.Fields = []string{"(hop) Content-Length: 2"}
			}),
			rest: "hi"},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\n", want: respSummary{Minor: 1, Status: 204, ContentLength: -1}},
		{name: "empty reason after space", in: "HTTP/1.1 200 \r\n\r\n", want: respSummary{Minor: 1, Status: 200, ContentLength: -1}},
		{name: "reason with spaces", in: "HTTP/1.1 404 Not Found\r\n\r\n", want: respSummary{Minor: 1, Status: 404, Reason: "Not Found", ContentLength: -1}},
		{name: "reason with htab and obs-text", in: "HTTP/1.1 200 O\tK \xe2\x9c\x93\r\n\r\n",
			want: respSummary{Minor: 1, Status: 200, Reason: "O\tK \xe2\x9c\x93", ContentLength: -1}},
		{name: "bare lf", in: "HTTP/1.1 200 OK\nServer: x\n\n", want: ok200("Server: x")},
		{name: "status 100", in: "HTTP/1.1 100 Continue\r\n\r\n", want: respSummary{Minor: 1, Status: 100, Reason: "Continue", ContentLength: -1}},
		{name: "status 599", in: "HTTP/1.1 599 X\r\n\r\n", want: respSummary{Minor: 1, Status: 599, Reason: "X", ContentLength: -1}},
		{name: "http/1.0 closes", in: "HTTP/1.0 200 OK\r\n\r\nbody", want: respSummary{Status: 200, Reason: "OK", ContentLength: -1, Close: true}, rest: "body"},
		{name: "http/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
			want: respSummary{Status: 200, Reason: "OK", ContentLength: 0, Fields: []string{"(hop) Connection: Keep-Alive", "(hop) Content-Length: 0"}}},
		{name: "http/1.1 close", in: resp200("Connection: close"), want: with(func(s *respSummary) {
			s.Close = true
			s.Fields = []string{"(hop) Connection: close"}
		})},

		{name: "short status", in: "HTTP/1.1 20\r\n\r\n", err: ErrMalformed},
		{name: "letters in status", in: "HTTP/1.1 abc OK\r\n\r\n", err: ErrMalformed},
		{name: "four digit status", in: "HTTP/1.1 2000 OK\r\n\r\n", err: ErrMalformed},
		{name: "no space after status", in: "HTTP/1.1 200OK\r\n\r\n", err: ErrMalformed},
		{name: "double space", in: "HTTP/1.1  200 OK\r\n\r\n", err: ErrMalformed},
		{name: "http/2", in: "HTTP/2 200\r\n\r\n", err: ErrMalformed},
		{name: "http/2.0", in: "HTTP/2.0 200 OK\r\n\r\n", err: ErrMalformed},
		{name: "http/1.2", in: "HTTP/1.2 200 OK\r\n\r\n", err: ErrMalformed},
		{name: "lower-case version", in: "http/1.1 200 OK\r\n\r\n", err: ErrMalformed},
		{name: "icy", in: "ICY 200 OK\r\n\r\n", err: ErrMalformed},
		{name: "status below 100", in: "HTTP/1.1 099 X\r\n\r\n", err: ErrMalformed},
		{name: "status 000", in: "HTTP/1.1 000\r\n\r\n", err: ErrMalformed},
		{name: "ctl in reason", in: "HTTP/1.1 200 O\x01K\r\n\r\n", err: ErrMalformed},
		{name: "bare cr in reason", in: "HTTP/1.1 200 O\rK\r\n\r\n", err: ErrMalformed},
		{name: "leading crlf", in: "\r\nHTTP/1.1 200 OK\r\n\r\n", err: ErrMalformed},
		{name: "status line at limit", in: "HTTP/1.1 200 " + a(87) + "\r\n\r\n", want: respSummary{Minor: 1, Status: 200, Reason: a(87), ContentLength: -1}},
		{name: "status line over limit", in: "HTTP/1.1 200 " + a(88) + "\r\n\r\n", err: ErrLineTooLong},
		{name: "status line over limit without lf", in: "HTTP/1.1 200 " + a(500), err: ErrLineTooLong},

		// Framing.
		{name: "equal duplicate content-length", in: resp200("Content-Length: 5", "content-length: 5") + "hello",
			want: with(func(s *respSummary) {
				s.ContentLength = 5
				s.Fields = []string{"(hop) Content-Length: 5", "(hop) content-length: 5"}
			}),
			rest: "hello"},
		{name: "different content-length", in: resp200("Content-Length: 5", "Content-Length: 6"), err: ErrMalformed},
		{name: "content-length list", in: resp200("Content-Length: 5, 5"), err: ErrMalformed},
		{name: "content-length negative", in: resp200("Content-Length: -1"), err: ErrMalformed},
		{name: "content-length empty", in: resp200("Content-Length:"), err: ErrMalformed},
		{name: "chunked", in: resp200("Transfer-Encoding: chunked"),
			want: with(func(s *respSummary) {
				s.Chunked = true
				s.Fields = []string{"(hop) Transfer-Encoding: chunked"}
			})},
		{name: "chunked and content-length", in: resp200("Content-Length: 10", "Transfer-Encoding: chunked"),
			want: with(func(s *respSummary) {
				s.Chunked, s.Close = true, true
				s.Fields = []string{"(hop) Content-Length: 10", "(hop) Transfer-Encoding: chunked"}
			})},
		{name: "transfer-encoding gzip", in: resp200("Transfer-Encoding: gzip"), err: ErrMalformed},
		{name: "two transfer-encoding", in: resp200("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), err: ErrMalformed},
		{name: "transfer-encoding space before colon", in: resp200("Transfer-Encoding : chunked"), err: ErrMalformed},

		// Limits.
		{name: "set-cookie at cookie limit", in: resp200("Set-Cookie: " + a(148)), want: ok200("Set-Cookie: " + a(148))},
		{name: "set-cookie over cookie limit", in: resp200("Set-Cookie: " + a(149)), err: ErrCookieTooLong},
		{name: "set-cookie over cookie limit without lf", in: "HTTP/1.1 200 OK\r\nset-cookie: " + a(500), err: ErrCookieTooLong},
		{name: "cookie in response uses field limit", in: resp200("Cookie: " + a(100)), err: ErrHeaderTooLong},
		{name: "field at limit", in: resp200("X-Long: " + a(72)), want: ok200("X-Long: " + a(72))},
		{name: "field over limit", in: resp200("X-Long: " + a(73)), err: ErrHeaderTooLong},
		{name: "field name over limit", in: resp200("X-" + a(23) + ": v"), err: ErrHeaderTooLong},
		{name: "field count at limit", in: resp200(sixteen...), want: ok200(sixteen...)},
		{name: "field count over limit", in: resp200(append(sixteen, "X-Last: v")...), err: ErrHeaderTooLong},
		{name: "headers total at limit", in: "HTTP/1.1 200 OK\r\n" + hsFields + "\r\n",
			lim:  func(l *Limits) { l.HeadersSize = len(hsFields) },
			want: ok200("Server: x", "X-Pad: "+a(30))},
		{name: "headers total over limit", in: "HTTP/1.1 200 OK\r\n" + hsFields + "\r\n",
			lim: func(l *Limits) { l.HeadersSize = len(hsFields) - 1 }, err: ErrHeaderTooLong},

		// Field syntax.
		{name: "obs-fold", in: resp200("X: a", " b"), err: ErrMalformed},
		{name: "nul in value", in: resp200("X: a\x00"), err: ErrMalformed},
		{name: "bare cr in value", in: resp200("X: a\rb"), err: ErrMalformed},
		{name: "space in name", in: resp200("X Y: a"), err: ErrMalformed},
		{name: "content-type", in: resp200("Content-Type: text/html; charset=utf-8"),
			want: with(func(s *respSummary) {
				s.ContentType, s.HasContentType = "text/html; charset=utf-8", true
				s.Fields = []string{"Content-Type: text/html; charset=utf-8"}
			})},
		{name: "empty content-type", in: resp200("content-type:"),
			want: with(func(s *respSummary) {
				s.HasContentType = true
				s.Fields = []string{"content-type: "}
			})},

		// Hop-by-hop fields.
		{name: "connection names fields", in: resp200("X-A: 1", "Connection: X-A, x-b", "x-B: 2", "X-C: 3"),
			want: ok200("(hop) X-A: 1", "(hop) Connection: X-A, x-b", "(hop) x-B: 2", "X-C: 3")},
		{name: "fixed hop fields", in: resp200("Keep-Alive: timeout=5", "TE: x", "Trailer: X-T", "Proxy-Connection: close", "Via: 1.1 d"),
			want: ok200("(hop) Keep-Alive: timeout=5", "(hop) TE: x", "(hop) Trailer: X-T", "(hop) Proxy-Connection: close", "Via: 1.1 d")},
		{name: "upgrade on 101", in: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes",
			want: respSummary{Minor: 1, Status: 101, Reason: "Switching Protocols", ContentLength: -1, ConnUpgrade: true,
				Fields: []string{"(hop) Connection: Upgrade", "Upgrade: websocket"}},
			rest: "frames"},
		{name: "upgrade on 200", in: resp200("Connection: upgrade", "Upgrade: h2c"),
			want: with(func(s *respSummary) {
				s.ConnUpgrade = true
				s.Fields = []string{"(hop) Connection: upgrade", "(hop) Upgrade: h2c"}
			})},

		// Ends of input.
		{name: "empty", in: "", err: ErrEmpty},
		{name: "eof in status line", in: "HTTP/1.1 2", err: io.ErrUnexpectedEOF},
		{name: "eof in fields", in: "HTTP/1.1 200 OK\r\nServer: x\r\n", err: io.ErrUnexpectedEOF},
		{name: "eof before last lf", in: "HTTP/1.1 200 OK\r\n\r", err: io.ErrUnexpectedEOF},
	}
}

func TestReadResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range responseCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := testLimits()
			if tc.lim != nil {
				tc.lim(&lim)
			}
			for _, fd := range feeds {
				t.Run(fd.name, func(t *testing.T) {
					b := NewReader(fd.wrap([]byte(tc.in)), fd.size)
					var r Response
					err := b.ReadResponse(&r, &lim)
					if tc.err != nil {
						require.ErrorIs(t, err, tc.err, "sent %q: got %s, parsed %+v", tc.in, sentinel(err), summarizeResponse(&r))
						return
					}
					require.NoError(t, err, "sent %q: got %s", tc.in, sentinel(err))
					assert.Equal(t, tc.want, summarizeResponse(&r), "sent %q", tc.in)
					assert.Equal(t, tc.rest, readRest(t, b), "sent %q: bytes after the head", tc.in)
				})
			}
		})
	}
}

// TestReadResponseInterim reads a 100 Continue and then the final
// response from one connection.
func TestReadResponseInterim(t *testing.T) {
	t.Parallel()
	in := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
	lim := testLimits()
	b := NewReader(bytes.NewReader([]byte(in)), 0)
	var r Response
	require.NoError(t, b.ReadResponse(&r, &lim), "sent %q", in)
	assert.Equal(t, 100, r.Status, "sent %q: first head", in)
	require.NoError(t, b.ReadResponse(&r, &lim), "sent %q", in)
	assert.Equal(t, 201, r.Status, "sent %q: second head", in)
	assert.Equal(t, int64(0), r.ContentLength, "sent %q: second head", in)
	assert.ErrorIs(t, b.ReadResponse(&r, &lim), ErrEmpty, "sent %q: then the connection closed", in)
}

// TestReadResponseResumes checks what the router relies on while it waits
// for a dyno: a read that times out inside the head can be retried after
// ClearErr, and the retry parses the same head.
func TestReadResponseResumes(t *testing.T) {
	t.Parallel()
	in := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=b\r\nContent-Length: 4\r\n\r\nbody"
	lim := testLimits()
	var want Response
	require.NoError(t, NewReader(bytes.NewReader([]byte(in)), 0).ReadResponse(&want, &lim), "sent %q", in)
	for _, withData := range []bool{false, true} {
		for at := 0; at <= len(in); at++ {
			src := &stopReader{data: []byte(in), stops: []int{at}, withData: withData, max: 7}
			b := NewReader(src, 16)
			var r Response
			err := b.ReadResponse(&r, &lim)
			timeouts := 0
			for isTimeout(err) && timeouts < 3 {
				timeouts++
				b.ClearErr()
				err = b.ReadResponse(&r, &lim)
			}
			require.NoError(t, err, "sent %q with a timeout at %d (data with it: %v)", in, at, withData)
			assert.Equal(t, summarizeResponse(&want), summarizeResponse(&r), "sent %q with a timeout at %d", in, at)
			rest, err := readAllRetry(b, b)
			require.NoError(t, err, "sent %q with a timeout at %d: reading the body", in, at)
			assert.Equal(t, "body", string(rest), "sent %q with a timeout at %d", in, at)
		}
	}
}

func TestResponseBodyAllowed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		head   bool
		want   bool
	}{
		{100, false, false}, {101, false, false}, {199, false, false},
		{200, false, true}, {200, true, false}, {204, false, false},
		{304, false, false}, {404, false, true}, {500, true, false},
	}
	for _, tc := range cases {
		r := Response{Status: tc.status}
		assert.Equal(t, tc.want, r.BodyAllowed(tc.head), "status %d, HEAD %v", tc.status, tc.head)
	}
}

func TestKeepAliveTimeout(t *testing.T) {
	for _, tc := range []struct {
		in   string
		secs int64
		ok   bool
	}{
		{"timeout=5", 5, true},
		{"timeout=5, max=1000", 5, true},
		{"max=100, Timeout=15", 15, true},
		{" timeout=0 ", 0, true},
		{"max=100", 0, false},
		{"timeout=", 0, false},
		{"timeout=5s", 0, false},
		{"timeout=-1", 0, false},
		{"", 0, false},
	} {
		secs, ok := KeepAliveTimeout([]byte(tc.in))
		if secs != tc.secs || ok != tc.ok {
			t.Errorf("KeepAliveTimeout(%q) = %d, %v; want %d, %v", tc.in, secs, ok, tc.secs, tc.ok)
		}
	}
}

// TestReadResponseHTTP09: a response that cannot start with "HTTP/" is
// malformed as soon as its first bytes show it (H17), even when the dyno
// then closes (which would otherwise read as a cut head, H18).
func TestReadResponseHTTP09(t *testing.T) {
	lim := testLimits()
	for _, in := range []string{"hello world\n", "<html>", "h", "HTTX/1.1 200 OK\r\n\r\n"} {
		var r Response
		err := NewReader(strings.NewReader(in), 0).ReadResponse(&r, &lim)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("ReadResponse(%q) = %v, want ErrMalformed", in, err)
		}
	}
	var r Response
	if err := NewReader(strings.NewReader("HTT"), 0).ReadResponse(&r, &lim); errors.Is(err, ErrMalformed) {
		t.Errorf("a head cut after %q is cut, not malformed: %v", "HTT", err)
	}
}
