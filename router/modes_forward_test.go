package router

// Issue 10: the forward suite (SPEC.md 4.3, 4.7, 7) over HTTP/1.1, HTTP/1.1
// over TLS and HTTP/2: what the dyno gets, and the router line.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestModesBasic: a GET is proxied and logged in every mode: the line's
// protocol and tls fields, the dyno gets HTTP/1.1 with one Host.
func TestModesBasic(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, m, "", "", d.addr())
		r := mreq{method: "GET", path: "/basic?x=1"}
		resp := mr.do(t, r)
		require.Equal(t, 200, resp.status, "sent %s; got %+v", &r, resp)
		assert.Equal(t, "ok", string(resp.body))
		assert.Equal(t, "end", resp.end)
		got := d.next(t)
		assert.Equal(t, "GET /basic?x=1 HTTP/1.1", got.requestLine(), "dyno head:\n%s", got.head)
		assert.Equal(t, []string{"shop.test"}, got.values("Host"), "one Host (from :authority over HTTP/2); dyno head:\n%s", got.head)
		assert.Contains(t, resp.line, `at=info method=GET path="/basic?x=1" host=shop.test `)
		assert.Contains(t, resp.line, " dyno=web.1 ")
		assert.Contains(t, resp.line, " status=200 bytes=2 ")
		mr.assertLine(t, resp.line)
	})
}

// TestModesForwardRequestID: X-Request-Id is kept when it is 20–200
// characters of A-Z a-z 0-9 + = / -, else replaced by a new lower-case
// UUID v4; request_id= is the value the dyno got (SPEC.md 4.7).
func TestModesForwardRequestID(t *testing.T) {
	cases := []struct {
		name, id string // id "" sends no field
		keep     bool
	}{
		{"none", "", false},
		{"20 characters", "abcdefghij0123456789", true},
		{"all allowed characters", "AZaz09+=/-AZaz09+=/-", true},
		{"200 characters", strings.Repeat("a1", 100), true},
		{"19 characters", "abcdefghij012345678", false},
		{"201 characters", strings.Repeat("a1", 100) + "b", false},
		{"underscore", "abcdefghij0123456789_", false},
		{"space inside", "abcdefghij 0123456789", false},
	}
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, m, "", "", d.addr())
		seen := map[string]bool{}
		for i, tc := range cases {
			r := mreq{method: "GET", path: fmt.Sprintf("/id%d", i)}
			if tc.id != "" {
				r.header = [][2]string{{"X-Request-Id", tc.id}}
			}
			resp := mr.do(t, r)
			require.Equal(t, 200, resp.status, "%s: sent %s", tc.name, &r)
			got := d.next(t)
			id := got.value(t, "X-Request-Id")
			if tc.keep {
				assert.Equal(t, tc.id, id, "%s: a valid id is kept", tc.name)
			} else {
				assert.Regexp(t, rqUUIDv4, id, "%s: sent %q, the dyno must get a new lower-case UUID v4", tc.name, tc.id)
				assert.False(t, seen[id], "%s: a new id per request; %q was used before", tc.name, id)
				seen[id] = true
			}
			assert.Equal(t, id, field(resp.line, "request_id"), "%s: request_id= is the id sent to the dyno; line %q", tc.name, resp.line)
		}
	})
}

// TestModesForwardAddedFields: X-Forwarded-For appends the client IP,
// X-Forwarded-Proto/Port and X-Request-Start replace the client's values,
// Via is appended with 1.1 or 2.0 (SPEC.md 4.7); fwd= is the
// X-Forwarded-For sent.
func TestModesForwardAddedFields(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, m, "", "", d.addr())

		r := mreq{method: "GET", path: "/f0", header: [][2]string{
			{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "gopher"}, {"X-Forwarded-Port", "443"},
			{"X-Request-Start", "1"}, {"Via", "1.0 fred"},
		}}
		before := time.Now().UnixMilli()
		resp := mr.do(t, r)
		after := time.Now().UnixMilli()
		require.Equal(t, 200, resp.status, "sent %s", &r)
		got := d.next(t)
		assert.Equal(t, "203.0.113.7, 127.0.0.1", got.value(t, "X-Forwarded-For"), "the client IP is appended; dyno head:\n%s", got.head)
		assert.Equal(t, "203.0.113.7, 127.0.0.1", field(resp.line, "fwd"), "fwd= is the X-Forwarded-For sent; line %q", resp.line)
		assert.Equal(t, mr.proto(), got.value(t, "X-Forwarded-Proto"), "dyno head:\n%s", got.head)
		assert.Equal(t, mr.port(t), got.value(t, "X-Forwarded-Port"), "the listener's port; dyno head:\n%s", got.head)
		start, err := strconv.ParseInt(got.value(t, "X-Request-Start"), 10, 64)
		require.NoError(t, err, "X-Request-Start is an integer; dyno head:\n%s", got.head)
		assert.True(t, start >= before && start <= after, "X-Request-Start %d: want when the request arrived, in [%d, %d]", start, before, after)
		assert.Equal(t, "1.0 fred, "+m.via(), strings.Join(got.values("Via"), ", "), "Via is appended; dyno head:\n%s", got.head)

		r = mreq{method: "GET", path: "/f1"}
		resp = mr.do(t, r)
		require.Equal(t, 200, resp.status)
		got = d.next(t)
		assert.Equal(t, "127.0.0.1", got.value(t, "X-Forwarded-For"), "dyno head:\n%s", got.head)
		assert.Equal(t, "127.0.0.1", field(resp.line, "fwd"), "line %q", resp.line)
		assert.Equal(t, m.via(), got.value(t, "Via"), "dyno head:\n%s", got.head)
		assert.Equal(t, m.via(), strings.Join(resp.header.Values("Via"), ", "), "Via on the response")

		r = mreq{method: "GET", path: "/f2", header: [][2]string{{"X-Forwarded-For", "198.51.100.1"}, {"X-Forwarded-For", "203.0.113.7"}}}
		resp = mr.do(t, r)
		require.Equal(t, 200, resp.status)
		got = d.next(t)
		assert.Equal(t, "198.51.100.1, 203.0.113.7, 127.0.0.1", got.value(t, "X-Forwarded-For"), "dyno head:\n%s", got.head)
		assert.Equal(t, "198.51.100.1, 203.0.113.7, 127.0.0.1", field(resp.line, "fwd"), "line %q", resp.line)
	})
}

// TestModesForwardHopByHop: hop-by-hop fields are not forwarded; the
// others keep their order and repetition (SPEC.md 4.7). HTTP/2 forbids the
// connection-specific fields (RFC 9113 section 8.2.2; see
// TestModesH26MalformedHTTP2), so over HTTP/2 the test sends the two it
// allows, te: trailers and trailer.
func TestModesForwardHopByHop(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, m, "", "", d.addr())
		r := mreq{method: "GET", path: "/hop"}
		if m == modeH2 {
			r.header = [][2]string{{"x-lower", "1"}, {"te", "trailers"}, {"zzz", "3"}, {"trailer", "X-T"},
				{"aaa", "4"}, {"x-dup", "a"}, {"x-dup", "b"}, {"x-utf8", "caf\xc3\xa9"}, {"x-empty", ""}}
		} else {
			r.header = [][2]string{{"x-lower", "1"}, {"Connection", "keep-alive, X-Drop-Me"}, {"X-Drop-Me", "secret"},
				{"Keep-Alive", "timeout=5"}, {"Proxy-Connection", "keep-alive"}, {"TE", "trailers"}, {"ZZZ", "3"},
				{"Trailer", "X-T"}, {"Upgrade", "websocket"}, {"Aaa", "4"}, {"X-Dup", "a"}, {"X-Dup", "b"},
				{"X-Utf8", "caf\xc3\xa9"}, {"X-Empty", ""}}
		}
		resp := mr.do(t, r)
		require.Equal(t, 200, resp.status, "sent %s", &r)
		got := d.next(t)
		for _, name := range []string{"Connection", "X-Drop-Me", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"} {
			assert.Empty(t, got.values(name), "%s must not reach the dyno; dyno head:\n%s", name, got.head)
		}
		assert.Equal(t, []string{"caf\xc3\xa9"}, got.values("X-Utf8"), "dyno head:\n%s", got.head)
		assert.Equal(t, []string{""}, got.values("X-Empty"), "an empty field is forwarded; dyno head:\n%s", got.head)
		var kept []string
		for _, ln := range got.fieldLines() {
			n, _, _ := strings.Cut(ln, ":")
			switch strings.ToLower(n) {
			case "x-lower", "zzz", "aaa", "x-dup":
				kept = append(kept, ln)
			}
		}
		want := []string{"x-lower: 1", "ZZZ: 3", "Aaa: 4", "X-Dup: a", "X-Dup: b"}
		if m == modeH2 {
			want = []string{"x-lower: 1", "zzz: 3", "aaa: 4", "x-dup: a", "x-dup: b"}
		}
		assert.Equal(t, want, kept, "end-to-end fields keep their order and repetition; dyno head:\n%s", got.head)
	})
}

// mShaDyno answers each request with the hex SHA-256 of its body (read
// by Content-Length or chunked), after signalling on quarter once a
// quarter of size bytes arrived (if quarter is not nil).
func mShaDyno(t *testing.T, size int, quarter func()) *rawDyno {
	return startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head := rqReadHead(br)
			if head == "" {
				return
			}
			h := sha256.New()
			var framing string
			var err error
			if cl := rqValues(head, "Content-Length"); len(cl) == 1 {
				framing = "length"
				n, _ := strconv.Atoi(cl[0])
				err = mCopyN(h, br, n, size, quarter)
			} else if len(rqValues(head, "Transfer-Encoding")) > 0 {
				framing = "chunked"
				err = mCopyN(h, httpChunked(br), -1, size, quarter)
			}
			if err != nil {
				return
			}
			out := framing + " " + hex.EncodeToString(h.Sum(nil))
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(out), out)
		}
	})
}

// mCopyN copies n bytes (n < 0: to EOF) from r into h, calling quarter
// once size/4 bytes were copied.
func mCopyN(h hash.Hash, r io.Reader, n, size int, quarter func()) error {
	buf := make([]byte, 32<<10)
	done, told := 0, false
	for n < 0 || done < n {
		want := len(buf)
		if n >= 0 {
			want = min(want, n-done)
		}
		k, err := r.Read(buf[:want])
		h.Write(buf[:k])
		done += k
		if !told && quarter != nil && done >= size/4 {
			told = true
			quarter()
		}
		if err == io.EOF && n < 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// TestModesForwardBody: request bodies reach the dyno intact: with a
// length, of unknown length (chunked over HTTP/1.1, DATA without
// content-length over HTTP/2) small enough to be read whole first (it goes
// with a Content-Length) or streamed, and a 1 MiB body either way
// (SPEC.md 4.7).
func TestModesForwardBody(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		big := make([]byte, 1<<20)
		for i := range big {
			big[i] = byte(i*7 + i>>9)
		}
		bigSum := sha256.Sum256(big)
		small := []byte("name=value&x=" + strings.Repeat("y", 5000))
		smallSum := sha256.Sum256(small)
		for _, tc := range []struct {
			name      string
			global    string
			body      []byte
			sum       [32]byte
			noLength  bool
			wantFrame string
		}{
			{"length", "", small, smallSum, false, "length"},
			{"unknown length, buffered", "", small, smallSum, true, "length"},
			{"unknown length, streamed", "buffering: {request_bytes: 0}", small, smallSum, true, "chunked"},
			{"1 MiB with length", "", big, bigSum, false, "length"},
			{"1 MiB of unknown length", "", big, bigSum, true, "chunked"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := mShaDyno(t, len(tc.body), nil)
				mr := startModeRouter(t, m, tc.global, "", d.addr())
				r := mreq{method: "POST", path: "/body", body: tc.body, noLength: tc.noLength}
				resp := mr.do(t, r)
				require.Equal(t, 200, resp.status, "sent %s; got %q", &r, resp.body)
				assert.Equal(t, tc.wantFrame+" "+hex.EncodeToString(tc.sum[:]), string(resp.body),
					"the dyno's framing and SHA-256 of the %d-byte body", len(tc.body))
				assert.Equal(t, strconv.Itoa(len(resp.body)), field(resp.line, "bytes"), "bytes= counts the response body; line %q", resp.line)
			})
		}
	})
}

// TestModesForwardStreamedBody: a 1 MiB body streams to the dyno as it
// arrives: the dyno reads a quarter of it before the client sends the
// second half (SPEC.md 4.7: nothing larger than buffering.request_bytes
// is buffered whole), with a length and without.
func TestModesForwardStreamedBody(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		const size = 1 << 20
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i*7 + i>>9)
		}
		sum := sha256.Sum256(body)
		for _, noLength := range []bool{false, true} {
			t.Run(fmt.Sprintf("noLength=%v", noLength), func(t *testing.T) {
				quarter := make(chan struct{})
				d := mShaDyno(t, size, rqOnce(quarter))
				mr := startModeRouter(t, m, "", "", d.addr())
				r := mreq{method: "POST", path: "/big"}
				declLen := size
				if noLength {
					declLen = -1
				}
				s := mr.openPartial(t, r, declLen)
				defer s.close()
				s.sendBody(t, body[:size/2], false)
				select {
				case <-quarter:
				case <-time.After(rqIOTimeout):
					t.Fatal("the dyno got less than a quarter of the body before the client finished it: the router must stream, not buffer")
				}
				s.sendBody(t, body[size/2:], true)
				resp := s.response(t)
				require.Equal(t, 200, resp.status)
				assert.True(t, strings.HasSuffix(string(resp.body), " "+hex.EncodeToString(sum[:])), "the dyno's SHA-256 of the 1 MiB body; got %q", resp.body)
			})
		}
	})
}

// TestModesForwardExpect: Expect: 100-continue is answered by the router
// (a 1xx head over HTTP/2) and not forwarded (SPEC.md 4.2).
func TestModesForwardExpect(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, m, "", "", d.addr())
		r := mreq{method: "POST", path: "/e", header: [][2]string{{"Expect", "100-continue"}}}
		s := mr.openPartial(t, r, 5)
		defer s.close()
		h := s.waitInterim(t)
		require.NotNil(t, h, "the router answers 100 Continue before the body is sent")
		assert.Equal(t, "100", h.Get(":status"))
		s.sendBody(t, []byte("hello"), true)
		resp := s.response(t)
		assert.Equal(t, 200, resp.status)
		got := d.next(t)
		assert.Empty(t, got.values("Expect"), "the dyno never sees Expect; dyno head:\n%s", got.head)
		assert.Equal(t, "hello", string(got.body))
		line := rqLineWithPath(t, mr.testRouter, "/e")
		assert.Equal(t, "200", field(line, "status"), "line %q", line)
		mr.assertLine(t, line)
	})
}
