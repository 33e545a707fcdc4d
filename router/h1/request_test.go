package h1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reqSummary is what a test compares of a parsed Request. Fields reads
// "Name: value", with "(hop) " in front of a field marked Hop.
type reqSummary struct {
	Method, Target string
	Minor          int
	Host           string
	HasHost        bool
	ContentLength  int64
	Chunked        bool
	Expect100      bool
	Close          bool
	Upgrade        bool
	Fields         []string
}

func summarizeRequest(r *Request) reqSummary {
	s := reqSummary{
		Method:        string(r.Method),
		Target:        string(r.Target),
		Minor:         r.Minor,
		Host:          string(r.Host),
		HasHost:       r.HasHost,
		ContentLength: r.ContentLength,
		Chunked:       r.Chunked,
		Expect100:     r.Expect100,
		Close:         r.Close,
		Upgrade:       r.Upgrade,
	}
	for _, f := range r.Fields {
		s.Fields = append(s.Fields, fieldString(f))
	}
	return s
}

func fieldString(f Field) string {
	s := string(f.Name) + ": " + string(f.Value)
	if f.Hop {
		return "(hop) " + s
	}
	return s
}

// get11 is the summary of "GET / HTTP/1.1" with Host "a" and the given
// fields after Host.
func get11(fields ...string) reqSummary {
	return reqSummary{
		Method: "GET", Target: "/", Minor: 1, Host: "a", HasHost: true,
		ContentLength: -1, Fields: append([]string{"Host: a"}, fields...),
	}
}

// head11 builds "GET / HTTP/1.1\r\nHost: a\r\n" + fields (each CRLF
// terminated) + "\r\n".
func head11(fields ...string) string {
	var b strings.Builder
	b.WriteString("GET / HTTP/1.1\r\nHost: a\r\n")
	for _, f := range fields {
		b.WriteString(f)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

type reqCase struct {
	name string
	in   string
	lim  func(*Limits) // changes testLimits(); nil: none
	err  error         // expected sentinel; nil: success
	want reqSummary    // on success
	rest string        // on success: bytes left after the head
}

func requestCases() []reqCase {
	with := func(f func(*reqSummary)) reqSummary {
		s := get11()
		f(&s)
		return s
	}
	a := func(n int) string { return strings.Repeat("a", n) }
	// 16 fields (the FieldCount of testLimits) with Host first.
	sixteen := []string{}
	for i := range 15 {
		sixteen = append(sixteen, fmt.Sprintf("X-%02d: v", i))
	}
	sixteenWant := get11(sixteen...)
	// Field lines that fill HeadersSize exactly: "Host: a\r\n" is 9 bytes.
	hsFields := "Host: a\r\nX-Pad: " + a(30) + "\r\n"
	hsExact := func(l *Limits) { l.HeadersSize = len(hsFields) }
	hsOneLess := func(l *Limits) { l.HeadersSize = len(hsFields) - 1 }
	big := func(l *Limits) { *l = bigLimits() }
	// pad returns n field lines of 80 bytes each, line ends included.
	pad := func(n int) []string {
		var p []string
		for i := range n {
			p = append(p, fmt.Sprintf("X-%02d: %s", i, a(72)))
		}
		return p
	}
	return []reqCase{
		// Valid request lines.
		{name: "get", in: head11(), want: get11()},
		{name: "post with body", in: "POST /form?a=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
			want: reqSummary{Method: "POST", Target: "/form?a=1", Minor: 1, Host: "a", HasHost: true, ContentLength: 5,
				Fields: []string{"Host: a", "(hop) Content-Length: 5"}},
			rest: "hello"},
		{name: "http/1.0 without host", in: "GET /x HTTP/1.0\r\n\r\n",
			want: reqSummary{Method: "GET", Target: "/x", ContentLength: -1, Close: true}},
		{name: "http/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			want: reqSummary{Method: "GET", Target: "/", ContentLength: -1, Fields: []string{"(hop) Connection: keep-alive"}}},
		{name: "http/1.0 keep-alive and close", in: "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
			want: reqSummary{Method: "GET", Target: "/", ContentLength: -1, Close: true, Fields: []string{"(hop) Connection: keep-alive, close"}}},
		{name: "options star", in: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			want: with(func(s *reqSummary) { s.Method, s.Target = "OPTIONS", "*" })},
		{name: "method PROPFIND", in: "PROPFIND /d HTTP/1.1\r\nHost: a\r\n\r\n",
			want: with(func(s *reqSummary) { s.Method, s.Target = "PROPFIND", "/d" })},
		{name: "method M-SEARCH", in: "M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n",
			want: with(func(s *reqSummary) { s.Method, s.Target = "M-SEARCH", "*" })},
		{name: "method at limit", in: "ABCDEFGHIJ / HTTP/1.1\r\nHost: a\r\n\r\n",
			want: with(func(s *reqSummary) { s.Method = "ABCDEFGHIJ" })},
		{name: "method over limit", in: "ABCDEFGHIJK / HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMethodTooLong},
		{name: "leading crlf skipped", in: "\r\n\r\n" + head11(), want: get11()},
		{name: "leading lf skipped", in: "\n\n" + head11(), want: get11()},
		{name: "eight leading crlf skipped", in: strings.Repeat("\r\n", 8) + head11(), want: get11()},
		{name: "nine leading crlf", in: strings.Repeat("\r\n", 9) + head11(), err: ErrMalformed},
		{name: "leading bare cr", in: "\r" + head11(), err: ErrMalformed},
		{name: "leading cr cr lf", in: "\r\r\n" + head11(), err: ErrMalformed},
		{name: "leading crlf then bare cr", in: "\r\n\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "only bare cr", in: "\r", err: ErrEmpty},
		{name: "bare lf line ends", in: "GET / HTTP/1.1\nHost: a\nX: b\n\n", want: get11("X: b")},
		{name: "mixed line ends", in: "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\n", want: get11("X: b")},
		{name: "request line at limit", in: "GET /" + a(86) + " HTTP/1.1\r\nHost: a\r\n\r\n",
			want: with(func(s *reqSummary) { s.Target = "/" + a(86) })},
		{name: "request line over limit", in: "GET /" + a(87) + " HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrLineTooLong},
		{name: "request line over limit without lf", in: "GET /" + a(200), err: ErrLineTooLong},

		// Bad request lines.
		{name: "double space", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "double space before version", in: "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "trailing space", in: "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "missing version", in: "GET /\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "missing version with space", in: "GET / \r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "only method", in: "GET\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "space in target", in: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "http/1.2", in: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "http/2.0", in: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "lower-case version", in: "GET / http/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "empty method", in: " / HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "method not a token", in: "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "ctl in target", in: "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "bare cr in target", in: "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "bare cr in request line end", in: "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", err: ErrMalformed},
		{name: "nul in request line", in: "GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},

		// Size limits on fields.
		{name: "field at limit", in: head11("X-Long: " + a(72)), want: get11("X-Long: " + a(72))},
		{name: "field over limit", in: head11("X-Long: " + a(73)), err: ErrHeaderTooLong},
		{name: "field over limit without lf", in: "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + a(200), err: ErrHeaderTooLong},
		{name: "cookie at limit", in: head11("Cookie: " + a(152)), want: get11("Cookie: " + a(152))},
		{name: "cookie over limit", in: head11("Cookie: " + a(153)), err: ErrCookieTooLong},
		{name: "lower-case cookie over limit", in: head11("cookie: " + a(153)), err: ErrCookieTooLong},
		{name: "cookie over limit without lf", in: "GET / HTTP/1.1\r\nHost: a\r\nCookie: " + a(300), err: ErrCookieTooLong},
		{name: "cookie over field limit under cookie limit", in: head11("Cookie: " + a(100)), want: get11("Cookie: " + a(100))},
		{name: "cookie limit below field limit", in: head11("Cookie: " + a(60)),
			lim: func(l *Limits) { l.Cookie = 50 }, err: ErrCookieTooLong},
		{name: "field name at limit", in: head11("X-" + a(22) + ": v"), want: get11("X-" + a(22) + ": v")},
		{name: "field name over limit", in: head11("X-" + a(23) + ": v"), err: ErrHeaderTooLong},
		{name: "field name over limit without colon", in: "GET / HTTP/1.1\r\nHost: a\r\nX-" + a(40), err: ErrHeaderTooLong},
		{name: "field count at limit", in: head11(sixteen...), want: sixteenWant},
		{name: "field count over limit", in: head11(append(sixteen, "X-Last: v")...), err: ErrHeaderTooLong},
		{name: "headers total at limit", in: "GET / HTTP/1.1\r\n" + hsFields + "\r\n", lim: hsExact,
			want: get11("X-Pad: " + a(30))},
		{name: "headers total over limit", in: "GET / HTTP/1.1\r\n" + hsFields + "\r\n", lim: hsOneLess, err: ErrHeaderTooLong},
		// A Cookie line over its own limit and over the total: the limit
		// passed first decides, however the bytes arrive.
		{name: "cookie limit passed before total", in: head11(append(pad(10), "Cookie: "+a(192))...), err: ErrCookieTooLong},
		{name: "total passed before cookie limit", in: head11(append(pad(11), "Cookie: "+a(192))...), err: ErrHeaderTooLong},
		{name: "big cookie with big limits", in: head11("Cookie: " + a(600<<10)), lim: big,
			want: get11("Cookie: " + a(600<<10))},

		// Framing.
		{name: "two equal content-length", in: head11("Content-Length: 1", "Content-Length: 1") + "x", err: ErrMalformed},
		{name: "two zero content-length", in: head11("Content-Length: 0", "Content-Length: 0"), err: ErrMalformed},
		{name: "content-length list", in: head11("Content-Length: 1,1") + "x", err: ErrMalformed},
		{name: "content-length plus", in: head11("Content-Length: +5"), err: ErrMalformed},
		{name: "content-length negative", in: head11("Content-Length: -1"), err: ErrMalformed},
		{name: "content-length two numbers", in: head11("Content-Length:  5 5"), err: ErrMalformed},
		{name: "content-length empty", in: head11("Content-Length:"), err: ErrMalformed},
		{name: "content-length hex", in: head11("Content-Length: 0x5"), err: ErrMalformed},
		{name: "content-length hex letters", in: head11("Content-Length: a"), err: ErrMalformed},
		{name: "content-length 19 digits", in: head11("Content-Length: 1000000000000000000"), err: ErrMalformed},
		{name: "content-length 18 digits", in: head11("Content-Length: 100000000000000000"),
			want: with(func(s *reqSummary) {
				s.ContentLength = 100000000000000000
				s.Fields = append(s.Fields, "(hop) Content-Length: 100000000000000000")
			})},
		{name: "content-length ows", in: head11("content-length: \t7 "),
			want: with(func(s *reqSummary) {
				s.ContentLength = 7
				s.Fields = append(s.Fields, "(hop) content-length: 7")
			})},
		{name: "content-length and transfer-encoding", in: head11("Content-Length: 3", "Transfer-Encoding: chunked"), err: ErrMalformed},
		{name: "transfer-encoding and content-length", in: head11("Transfer-Encoding: chunked", "Content-Length: 3"), err: ErrMalformed},
		{name: "transfer-encoding gzip", in: head11("Transfer-Encoding: gzip"), err: ErrMalformed},
		{name: "transfer-encoding gzip chunked", in: head11("Transfer-Encoding: gzip, chunked"), err: ErrMalformed},
		{name: "transfer-encoding chunked chunked", in: head11("Transfer-Encoding: chunked, chunked"), err: ErrMalformed},
		{name: "transfer-encoding identity", in: head11("Transfer-Encoding: identity"), err: ErrMalformed},
		{name: "transfer-encoding xchunked", in: head11("Transfer-Encoding: xchunked"), err: ErrMalformed},
		{name: "transfer-encoding empty", in: head11("Transfer-Encoding:"), err: ErrMalformed},
		{name: "two transfer-encoding", in: head11("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), err: ErrMalformed},
		{name: "transfer-encoding space before colon", in: head11("Transfer-Encoding : chunked"), err: ErrMalformed},
		{name: "transfer-encoding as obs-fold", in: head11("X: y", " Transfer-Encoding: chunked"), err: ErrMalformed},
		{name: "transfer-encoding chunked", in: head11("Transfer-Encoding: chunked") + "0\r\n\r\n",
			want: with(func(s *reqSummary) {
				s.Chunked = true
				s.Fields = append(s.Fields, "(hop) Transfer-Encoding: chunked")
			}),
			rest: "0\r\n\r\n"},
		{name: "transfer-encoding Chunked", in: head11("Transfer-Encoding: Chunked"),
			want: with(func(s *reqSummary) {
				s.Chunked = true
				s.Fields = append(s.Fields, "(hop) Transfer-Encoding: Chunked")
			})},
		{name: "transfer-encoding htab", in: head11("Transfer-Encoding:\tchunked"),
			want: with(func(s *reqSummary) {
				s.Chunked = true
				s.Fields = append(s.Fields, "(hop) Transfer-Encoding: chunked")
			})},
		{name: "transfer-encoding on http/1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", err: ErrMalformed},

		// Field syntax.
		{name: "obs-fold space", in: head11("X: b", " c"), err: ErrMalformed},
		{name: "obs-fold htab", in: head11("X: b", "\tc"), err: ErrMalformed},
		{name: "first field obs-fold", in: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", err: ErrMalformed},
		{name: "space before colon", in: head11("Foo : bar"), err: ErrMalformed},
		{name: "space in name", in: head11("Fo o: bar"), err: ErrMalformed},
		{name: "parens in name", in: head11("F(o): x"), err: ErrMalformed},
		{name: "empty name", in: head11(": x"), err: ErrMalformed},
		{name: "no colon", in: head11("Foo"), err: ErrMalformed},
		{name: "nul in value", in: head11("X: a\x00b"), err: ErrMalformed},
		{name: "bare cr in value", in: head11("X: a\rb"), err: ErrMalformed},
		{name: "cr cr lf", in: head11("X: a\r"), err: ErrMalformed},
		{name: "ctl in value", in: head11("X: a\x01b"), err: ErrMalformed},
		{name: "del in value", in: head11("X: a\x7fb"), err: ErrMalformed},
		{name: "nul in name", in: head11("X\x00: a"), err: ErrMalformed},
		{name: "htab in value", in: head11("X: a\tb"), want: get11("X: a\tb")},
		{name: "ows trimmed", in: head11("X:\t a b \t"), want: get11("X: a b")},
		{name: "empty value", in: head11("X:"), want: get11("X: ")},
		{name: "obs-text in value", in: head11("X: caf\xc3\xa9"), want: get11("X: caf\xc3\xa9")},

		// Host.
		{name: "second host", in: head11("Host: b"), err: ErrMalformed},
		{name: "second equal host", in: head11("host: a"), err: ErrMalformed},
		{name: "missing host", in: "GET / HTTP/1.1\r\nX: y\r\n\r\n", err: ErrMalformed},
		{name: "empty host", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n", err: ErrMalformed},
		{name: "empty host on http/1.0", in: "GET / HTTP/1.0\r\nHost: \r\n\r\n", err: ErrMalformed},
		{name: "host with space", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", err: ErrMalformed},
		{name: "host with slash", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", err: ErrMalformed},
		{name: "host with port and ipv6", in: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
			want: reqSummary{Method: "GET", Target: "/", Minor: 1, Host: "[::1]:8080", HasHost: true, ContentLength: -1,
				Fields: []string{"Host: [::1]:8080"}}},
		{name: "http/1.0 with host", in: "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
			want: reqSummary{Method: "GET", Target: "/", Host: "a", HasHost: true, ContentLength: -1, Close: true,
				Fields: []string{"Host: a"}}},

		// Expect.
		{name: "expect 100-continue", in: head11("Expect: 100-continue"),
			want: with(func(s *reqSummary) {
				s.Expect100 = true
				s.Fields = append(s.Fields, "(hop) Expect: 100-continue")
			})},
		{name: "expect 100-Continue", in: head11("expect: 100-Continue"),
			want: with(func(s *reqSummary) {
				s.Expect100 = true
				s.Fields = append(s.Fields, "(hop) expect: 100-Continue")
			})},
		{name: "expect foo", in: head11("Expect: foo"), err: ErrUnsupportedExpect},
		{name: "expect list", in: head11("Expect: 100-continue, x"), err: ErrUnsupportedExpect},
		{name: "framing error wins over expect", in: head11("Expect: foo", "Content-Length: x"), err: ErrMalformed},

		// Connection and hop-by-hop fields.
		{name: "connection comma only", in: head11("Connection: ,"), err: ErrMalformed},
		{name: "connection empty", in: head11("Connection:"), err: ErrMalformed},
		{name: "connection non-token", in: head11("Connection: close, a b"), err: ErrMalformed},
		{name: "connection close", in: head11("Connection: close"),
			want: with(func(s *reqSummary) {
				s.Close = true
				s.Fields = append(s.Fields, "(hop) Connection: close")
			})},
		{name: "connection Close list", in: head11("Connection: , Close ,"),
			want: with(func(s *reqSummary) {
				s.Close = true
				s.Fields = append(s.Fields, "(hop) Connection: , Close ,")
			})},
		{name: "connection keep-alive on http/1.1", in: head11("Connection: keep-alive", "Keep-Alive: timeout=5"),
			want: get11("(hop) Connection: keep-alive", "(hop) Keep-Alive: timeout=5")},
		{name: "connection names fields", in: head11("X-A: 1", "Connection: x-a, X-B", "X-B: 2", "X-C: 3"),
			want: get11("(hop) X-A: 1", "(hop) Connection: x-a, X-B", "(hop) X-B: 2", "X-C: 3")},
		{name: "connection naming host", in: head11("Connection: Host, x-a", "X-A: 1"),
			want: get11("(hop) Connection: Host, x-a", "(hop) X-A: 1")},
		{name: "fixed hop fields", in: head11("Keep-Alive: 1", "TE: trailers", "Trailer: X", "Proxy-Connection: keep-alive", "Via: 1.0 x"),
			want: get11("(hop) Keep-Alive: 1", "(hop) TE: trailers", "(hop) Trailer: X", "(hop) Proxy-Connection: keep-alive", "Via: 1.0 x")},
		{name: "upgrade request", in: head11("Connection: Upgrade", "Upgrade: websocket"),
			want: with(func(s *reqSummary) {
				s.Upgrade = true
				s.Fields = append(s.Fields, "(hop) Connection: Upgrade", "Upgrade: websocket")
			})},
		{name: "upgrade without connection token", in: head11("Upgrade: websocket"),
			want: get11("(hop) Upgrade: websocket")},
		{name: "connection upgrade without upgrade field", in: head11("Connection: upgrade"),
			want: get11("(hop) Connection: upgrade")},
		{name: "upgrade on http/1.0", in: "GET / HTTP/1.0\r\nConnection: upgrade, keep-alive\r\nUpgrade: websocket\r\n\r\n",
			want: reqSummary{Method: "GET", Target: "/", ContentLength: -1,
				Fields: []string{"(hop) Connection: upgrade, keep-alive", "(hop) Upgrade: websocket"}}},
		{name: "upgrade with close", in: head11("Connection: upgrade, close", "Upgrade: h2c"),
			want: with(func(s *reqSummary) {
				s.Upgrade, s.Close = true, true
				s.Fields = append(s.Fields, "(hop) Connection: upgrade, close", "Upgrade: h2c")
			})},

		// Ends of input.
		{name: "empty", in: "", err: ErrEmpty},
		{name: "only crlf", in: "\r\n", err: ErrEmpty},
		{name: "eof in request line", in: "GET / HT", err: io.ErrUnexpectedEOF},
		{name: "eof in fields", in: "GET / HTTP/1.1\r\nHost: a\r\n", err: io.ErrUnexpectedEOF},
		{name: "eof before last lf", in: "GET / HTTP/1.1\r\nHost: a\r\n\r", err: io.ErrUnexpectedEOF},
		{name: "pipelined", in: head11() + head11(), want: get11(), rest: head11()},
	}
}

// readRest returns everything b still has: buffered bytes, then the rest
// of the connection.
func readRest(t *testing.T, b *Reader) string {
	t.Helper()
	rest, err := io.ReadAll(b)
	require.NoError(t, err, "reading what follows the head")
	return string(rest)
}

func TestReadRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range requestCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := testLimits()
			if tc.lim != nil {
				tc.lim(&lim)
			}
			for _, fd := range feeds {
				t.Run(fd.name, func(t *testing.T) {
					b := NewReader(fd.wrap([]byte(tc.in)), fd.size)
					var r Request
					err := b.ReadRequest(&r, &lim)
					sent := tc.in
					if len(sent) > 300 {
						sent = sent[:300] + "..."
					}
					if tc.err != nil {
						require.ErrorIs(t, err, tc.err, "sent %q: got %s, parsed %+v", sent, sentinel(err), summarizeRequest(&r))
						return
					}
					require.NoError(t, err, "sent %q: got %s", sent, sentinel(err))
					assert.Equal(t, tc.want, summarizeRequest(&r), "sent %q", sent)
					assert.Equal(t, tc.rest, readRest(t, b), "sent %q: bytes after the head", sent)
				})
			}
		})
	}
}

// TestReadRequestPipelined reads requests one after the other from one
// connection, each body read through a LengthReader or ChunkedReader.
func TestReadRequestPipelined(t *testing.T) {
	t.Parallel()
	in := "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
		"\r\n" + // a stray CRLF between requests is skipped
		"POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\nX-T: 1\r\n\r\n" +
		"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
	lim := testLimits()
	for _, fd := range feeds {
		t.Run(fd.name, func(t *testing.T) {
			b := NewReader(fd.wrap([]byte(in)), fd.size)
			var r Request
			var bodies []string
			var targets []string
			for {
				err := b.ReadRequest(&r, &lim)
				if errors.Is(err, ErrEmpty) {
					break
				}
				require.NoError(t, err, "sent %q; after targets %q", in, targets)
				targets = append(targets, string(r.Target))
				var body io.Reader
				switch {
				case r.Chunked:
					var c ChunkedReader
					c.Reset(b)
					body = &c
				default:
					var l LengthReader
					l.Reset(b, max(r.ContentLength, 0))
					body = &l
				}
				got, err := io.ReadAll(body)
				require.NoError(t, err, "reading the body of %s", r.Target)
				bodies = append(bodies, string(got))
			}
			assert.Equal(t, []string{"/1", "/2", "/3"}, targets, "sent %q", in)
			assert.Equal(t, []string{"abc", "def", ""}, bodies, "sent %q", in)
		})
	}
}

// TestReadRequestEarlyLimit checks that an oversized line is refused as
// soon as the limit is passed, without waiting for its LF (which never
// comes: the writer blocks).
func TestReadRequestEarlyLimit(t *testing.T) {
	t.Parallel()
	a := func(n int) string { return strings.Repeat("a", n) }
	var fields strings.Builder
	for i := range 20 {
		fmt.Fprintf(&fields, "X-%02d: v\r\n", i)
	}
	cases := []struct {
		name   string
		prefix string
		err    error
	}{
		{"request line", "GET /" + a(5000), ErrLineTooLong},
		{"request line just over", "GET /" + a(96), ErrLineTooLong},
		{"field", "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + a(5000), ErrHeaderTooLong},
		{"field just over", "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + a(73), ErrHeaderTooLong},
		{"cookie", "GET / HTTP/1.1\r\nHost: a\r\nCookie: " + a(5000), ErrCookieTooLong},
		{"field name", "GET / HTTP/1.1\r\nHost: a\r\nX-" + a(23), ErrHeaderTooLong},
		{"field count", "GET / HTTP/1.1\r\nHost: a\r\n" + fields.String(), ErrHeaderTooLong},
		{"headers total", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: "+a(70)+"\r\n", 14), ErrHeaderTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pr, pw := io.Pipe()
			var wg sync.WaitGroup
			wg.Go(func() {
				pw.Write([]byte(tc.prefix)) // blocks until read or the pipe closes
			})
			defer wg.Wait()
			defer pr.Close()
			lim := testLimits()
			done := make(chan error, 1)
			go func() {
				var r Request
				done <- NewReader(pr, 64).ReadRequest(&r, &lim)
			}()
			select {
			case err := <-done:
				require.ErrorIs(t, err, tc.err, "sent %q and no LF: got %s", tc.prefix, sentinel(err))
			case <-time.After(10 * time.Second):
				pr.CloseWithError(errors.New("test gave up"))
				t.Fatalf("sent %q and no LF: ReadRequest still waiting, want %v at once", tc.prefix, tc.err)
			}
		})
	}
}

// TestReadRequestAtLimitWaits checks the other side: a prefix exactly at a
// limit is not refused, and parses once the rest arrives.
func TestReadRequestAtLimitWaits(t *testing.T) {
	t.Parallel()
	prefix := "GET /" + strings.Repeat("a", 86) + " HTTP/1.1\r"
	pr, pw := io.Pipe()
	lim := testLimits()
	done := make(chan error, 1)
	var r Request
	go func() { done <- NewReader(pr, 16).ReadRequest(&r, &lim) }()
	_, err := pw.Write([]byte(prefix))
	require.NoError(t, err, "writing %q", prefix)
	_, err = pw.Write([]byte("\nHost: a\r\n\r\n"))
	require.NoError(t, err, "writing the rest after %q", prefix)
	require.NoError(t, <-done, "sent a request line of exactly StartLine bytes")
	assert.Equal(t, "/"+strings.Repeat("a", 86), string(r.Target))
}

// TestReadRequestTimeoutPassesThrough checks that a connection error is
// returned as it is, so the router can tell a client timeout (H28).
func TestReadRequestTimeoutPassesThrough(t *testing.T) {
	t.Parallel()
	for _, at := range []int{0, 5, 20} {
		in := head11()
		src := &stopReader{data: []byte(in), stops: []int{at}}
		lim := testLimits()
		var r Request
		err := NewReader(src, 16).ReadRequest(&r, &lim)
		assert.True(t, isTimeout(err), "sent %q with a timeout at %d: got %v", in, at, err)
	}
}

// TestReaderZeroValue checks that a Reader made without NewReader works
// once Reset.
func TestReaderZeroValue(t *testing.T) {
	t.Parallel()
	var b Reader
	b.Reset(bytes.NewReader([]byte(head11())))
	lim := testLimits()
	var r Request
	require.NoError(t, b.ReadRequest(&r, &lim), "zero Reader after Reset, sent %q", head11())
	assert.Equal(t, get11(), summarizeRequest(&r))
}

// TestRequestHasBody checks the framing summary.
func TestRequestHasBody(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want bool
	}{
		{head11(), false},
		{head11("Content-Length: 0"), false},
		{head11("Content-Length: 1"), true},
		{head11("Transfer-Encoding: chunked"), true},
	}
	for _, tc := range cases {
		lim := testLimits()
		var r Request
		require.NoError(t, NewReader(bytes.NewReader([]byte(tc.in)), 0).ReadRequest(&r, &lim), "sent %q", tc.in)
		assert.Equal(t, tc.want, r.HasBody(), "sent %q", tc.in)
	}
}

func TestPeekHost(t *testing.T) {
	for _, tc := range []struct {
		in, host string
		ok       bool
	}{
		{"GET / HTTP/1.1\r\nHost: a.test\r\n", "a.test", true},
		{"GET / HTTP/1.1\r\nX: 1\r\nhOST:  b.test \r\nUser-Agent: x", "b.test", true},
		{"GET / HTTP/1.1\r\nHost: a.te", "", false},
		{"GET / HTTP/1.1\r\nX: 1\r\n\r\nHost: late\r\n", "", false},
		{"GET / HTTP/1.1", "", false},
	} {
		host, ok := PeekHost([]byte(tc.in))
		if string(host) != tc.host || ok != tc.ok {
			t.Errorf("PeekHost(%q) = %q, %v; want %q, %v", tc.in, host, ok, tc.host, tc.ok)
		}
	}
}
