package router

// Issue 9, wire details: malformed request lines answered in the right
// HTTP version, absolute-form targets (SPEC.md 4.3), fields a client must
// not smuggle to a dyno (SPEC.md 4.7), and an HTTP/0.9-style dyno answer
// (SPEC.md 4.8, H17).

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIssue9MalformedRequestLine: a request line that is not METHOD SP
// target SP HTTP/1.0|HTTP/1.1 (SPEC.md 4.2) is answered 400 in HTTP/1.1
// and logged protocol=http1.1, unless it ends in HTTP/1.0: then the
// answer is HTTP/1.0 (and the line protocol=http1.0). No byte reaches a
// dyno and the connection is closed.
func TestIssue9MalformedRequestLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line  string
		minor int
	}{
		{"GET /a b HTTP/1.1", 1},
		{"GET / HTTP/1.2", 1},
		{"GET /\x00 HTTP/1.1", 1},
		{"GET /\x7f HTTP/1.1", 1},
		{"GET / HTTP/1.1 ", 1},
		{"GET /a b HTTP/1.0", 0},
		{"GET /\x00 HTTP/1.0", 0},
		{"GET  / HTTP/1.0", 0},
	} {
		t.Run(fmt.Sprintf("%q", tc.line), func(t *testing.T) {
			t.Parallel()
			d := rqRecordingDyno(t, nil)
			tr := startRouter(t, oneApp("", d.addr()))
			c := rqOpen(t, tr)
			raw := tc.line + "\r\nHost: shop.test\r\n\r\n"
			c.send(raw)
			c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
			status := i9StatusLine(t, c.br, raw)
			want := fmt.Sprintf("HTTP/1.%d 400 ", tc.minor)
			assert.True(t, strings.HasPrefix(status, want), "sent %q: want %q…, got %q", raw, want, status)
			c.readAll(raw)
			line := tr.lines.wait(t, 0)
			assert.Equal(t, fmt.Sprintf("http1.%d", tc.minor), field(line, "protocol"), "sent %q; line %q", raw, line)
			assert.Equal(t, "400", field(line, "status"), "line %q", line)
			assert.Contains(t, line, " code=", "a refused request has a code; line %q", line)
			assert.Zero(t, d.accepted(), "nothing reaches a dyno")
		})
	}
}

// i9TwoApps is a space of apps appa (a.test) and appb (b.test), each on
// its dyno.
func i9TwoApps(aDyno, bDyno string) string {
	return "apps:\n" +
		"  - name: appa\n    domains: [a.test]\n    dynos: [{name: web.1, address: \"" + aDyno + "\"}]\n" +
		"  - name: appb\n    domains: [b.test]\n    dynos: [{name: web.1, address: \"" + bDyno + "\"}]\n"
}

// TestIssue9AbsoluteForm (SPEC.md 4.3): an absolute-form target's
// authority wins over Host; the dyno gets the origin form with that Host,
// once; the line's path is the raw target.
func TestIssue9AbsoluteForm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ target, origin, host string }{
		{"http://b.test/x?y=1", "/x?y=1", "b.test"},
		{"HTTP://B.TEST/x", "/x", "B.TEST"},
		{"http://b.test:8080/p", "/p", "b.test:8080"},
		{"http://b.test?q=1", "/?q=1", "b.test"},
		{"http://b.test", "/", "b.test"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			t.Parallel()
			a, b := rqRecordingDyno(t, nil), rqRecordingDyno(t, nil)
			tr := startRouter(t, i9TwoApps(a.addr(), b.addr()))
			raw := "GET " + tc.target + " HTTP/1.1\r\nHost: a.test\r\nX-Mark: 1\r\n\r\n"
			resp, _ := tr.roundTrip(t, raw, "GET")
			assert.Equal(t, 200, resp.StatusCode)
			got := b.next(t)
			assert.Equal(t, "GET "+tc.origin+" HTTP/1.1", got.requestLine(), "sent %q", raw)
			assert.Equal(t, []string{tc.host}, got.values("Host"), "exactly one Host, the target's authority; head:\n%s", got.head)
			assert.Equal(t, []string{"1"}, got.values("X-Mark"))
			assert.Zero(t, a.accepted(), "the Host field's app gets nothing")
			line := tr.lines.wait(t, 0)
			assert.Equal(t, tc.target, field(line, "path"), "the line's path is the raw target; line %q", line)
			assert.Equal(t, strings.ToLower(strings.Split(tc.host, ":")[0]), field(line, "host"), "line %q", line)
		})
	}
}

// TestIssue9AbsoluteFormTLS (SPEC.md 4.3): on TLS the absolute-form
// authority is the Host that must belong to the SNI name's app: another
// app's is 421 H31; one of the same app is served.
func TestIssue9AbsoluteFormTLS(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	shop, blog := echoHeadDyno(t), rqRecordingDyno(t, nil)
	tr := startRouter(t, tlsSpace(t, p, shop.addr(), blog.addr(), ""))
	send := func(raw string) (*http.Response, string) {
		conn, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{RootCAs: p.pool, ServerName: "shop.test", NextProtos: []string{"http/1.1"}})
		require.NoError(t, err)
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(conn, raw)
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "GET"})
		require.NoError(t, err, "sent %q", raw)
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	raw := "GET http://blog.test/x HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	resp, _ := send(raw)
	assert.Equal(t, 421, resp.StatusCode, "SNI shop.test, Host shop.test, target on blog.test: sent %q", raw)
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, `code=H31 desc="Misdirected Request"`, "line %q", line)
	assert.Zero(t, blog.accepted(), "the other app's dyno gets nothing")

	raw = "GET https://www.shop.test/y HTTP/1.1\r\nHost: blog.test\r\n\r\n"
	resp, body := send(raw)
	assert.Equal(t, 200, resp.StatusCode, "SNI shop.test, target on www.shop.test (same app), Host blog.test: sent %q", raw)
	assert.True(t, strings.HasPrefix(body, "GET /y HTTP/1.1\r\n"), "the dyno got %q", body)
	assert.Equal(t, []string{"www.shop.test"}, rqValues(body, "Host"), "the dyno got %q", body)
}

// TestIssue9SmuggledFields (SPEC.md 4.7 and issue 9): Forwarded and
// X-Forwarded-Host from a client never reach a dyno, nor do fields whose
// names read as framing or forwarding fields once '_' is '-'; a body
// framed by Content-Length is forwarded as that, whatever a
// Transfer_Encoding field says.
func TestIssue9SmuggledFields(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, nil)
	tr := startRouter(t, oneApp("", d.addr()))
	c := rqOpen(t, tr)
	raw := "GET /f HTTP/1.1\r\nHost: shop.test\r\n" +
		"Forwarded: for=6.6.6.6;host=evil.test;proto=https\r\n" +
		"X-Forwarded-Host: evil.test\r\n" +
		"x-forwarded-host: evil2.test\r\n" +
		"Transfer_Encoding: chunked\r\n" +
		"Content_Length: 5\r\n" +
		"X_Forwarded_For: 1.2.3.4\r\n" +
		"X_Forwarded_Proto: https\r\n" +
		"X_Request_Id: forged-request-id-1234567890\r\n" +
		"X_Other_Field: kept\r\n\r\n"
	resp, _ := c.roundTrip(raw, "GET")
	assert.Equal(t, 200, resp.StatusCode)
	got := d.next(t)
	for _, name := range []string{"Forwarded", "X-Forwarded-Host", "Transfer_Encoding", "Content_Length",
		"X_Forwarded_For", "X_Forwarded_Proto", "X_Request_Id", "Transfer-Encoding", "Content-Length"} {
		assert.Empty(t, got.values(name), "%s must not reach the dyno; head:\n%s", name, got.head)
	}
	assert.Equal(t, []string{"kept"}, got.values("X_Other_Field"), "a name with '_' that reads as no known field passes")
	assert.Equal(t, []string{"127.0.0.1"}, got.values("X-Forwarded-For"), "head:\n%s", got.head)
	assert.Equal(t, []string{"http"}, got.values("X-Forwarded-Proto"), "head:\n%s", got.head)
	assert.NotContains(t, got.head, "evil")
	assert.NotContains(t, got.head, "1.2.3.4")

	// Content-Length: 3 with Transfer_Encoding: chunked: a 3-byte body,
	// then the next request.
	raw = "POST /cl HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\nTransfer_Encoding: chunked\r\n\r\nabc" +
		"GET /after HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	c.send(raw)
	resp, _ = c.response("POST", raw)
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = c.response("GET", raw)
	assert.Equal(t, 200, resp.StatusCode)
	got = d.next(t)
	assert.Equal(t, "POST /cl HTTP/1.1", got.requestLine())
	assert.Equal(t, []string{"3"}, got.values("Content-Length"), "head:\n%s", got.head)
	assert.Empty(t, got.values("Transfer-Encoding"))
	assert.Empty(t, got.values("Transfer_Encoding"))
	assert.Equal(t, "abc", string(got.body))
	got = d.next(t)
	assert.Equal(t, "GET /after HTTP/1.1", got.requestLine(), "the next request follows the 3-byte body")
	assert.Empty(t, got.body)
}

// TestIssue9HTTP09Response (SPEC.md 4.8): a dyno that answers with no
// status line ("hello world\n", HTTP/0.9 style) sent a response that
// cannot be parsed: H17 (503), not H18, whether it then closes or not.
func TestIssue9HTTP09Response(t *testing.T) {
	t.Parallel()
	for _, closeAfter := range []bool{true, false} {
		t.Run(fmt.Sprintf("close=%v", closeAfter), func(t *testing.T) {
			t.Parallel()
			d := startRawDyno(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if readRequestHead(br) == "" {
					return
				}
				io.WriteString(c, "hello world\n")
				if !closeAfter {
					io.Copy(io.Discard, br) // until the router closes
				}
			})
			tr := startRouter(t, oneApp("", d.addr()))
			raw := "GET /09 HTTP/1.1\r\nHost: shop.test\r\n\r\n"
			resp, _ := tr.roundTrip(t, raw, "GET")
			assert.Equal(t, 503, resp.StatusCode)
			line := tr.lines.wait(t, 0)
			assert.Contains(t, line, `at=error code=H17 desc="Poorly formatted HTTP response" `,
				"the dyno answered %q to %q; line %q", "hello world\n", raw, line)
		})
	}
}
