package logging

// A port of the router-line path of heroku/lumbermill, the consumer SPEC.md
// section 7 names: a router line must be taken by it with its fields read
// as written. The port is our own code and follows, step by step:
//
//   - github.com/bmizerany/lpx reader.go (Reader.Next, Reader.field), at
//     af85cf24c1567bcb5a2e4c21597cc049eab31f55, the revision lumbermill
//     vendors (heroku/lumbermill Godeps/_workspace/src/github.com/bmizerany/lpx/reader.go):
//     octet-counted syslog frames "<n> PRI/VERSION TIME HOST APP PROCID MSGID MSG";
//   - github.com/kr/logfmt scanner.go (gotoScanner) and unquote.go
//     (unquoteBytes), at b84e30acd515aadc4b783ad4ff83aff3299bdfe0 (heroku/lumbermill
//     Godeps/_workspace/src/github.com/kr/logfmt/): which bytes make keys and
//     bare values, JSON unescaping of quoted values that hold a backslash,
//     the first error of the line returned after the whole line is scanned;
//   - heroku/lumbermill drain.go, serveDrain lines 96-170 (commit
//     8fac4dbb98671035410435576656eae8139e4d62): APP-NAME "heroku" or a
//     "t." token, TIMESTAMP parsed as "2006-01-02T15:04:05.000000+00:00"
//     or "2006-01-02T15:04:05+00:00", PROCID "router", then a line holding
//     " code=H" goes to routerError, one holding " code=blank-app" or
//     ` desc="Blank app"` is counted and dropped, any other to routerMsg;
//     a logfmt error drops the line;
//   - heroku/lumbermill router_msg.go, routerMsg.HandleLogfmt (lines
//     44-87) and routerError.HandleLogfmt (lines 106-149): routerMsg parses
//     connect and service with strconv.Atoi after strings.TrimSuffix(v,
//     "ms"), status and bytes with strconv.Atoi, and any error drops the
//     line; routerError swallows those errors ("connect could be
//     nothing").
//
// The one liberty: the port's handlers wrap the strconv error with the key
// (lmFieldError), where lumbermill returns it bare, so tests can say which
// field made a line drop. What is taken and what is dropped is unchanged.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/errcodes"
)

// lpxHeader is the syslog header of one lpx frame (lpx.Header).
type lpxHeader struct {
	PrivalVersion, Time, Hostname, Name, Procid, Msgid []byte
}

// lpxReader reads octet-counted frames (lpx.Reader).
type lpxReader struct {
	r   *bufio.Reader
	hdr lpxHeader
	err error
	n   int64 // bytes of the frame not read yet
	msg []byte
}

// next advances to the next frame (lpx Reader.Next): the length, six
// space-terminated header fields counted against it, then the rest of the
// count as the message.
func (r *lpxReader) next() bool {
	if r.err != nil {
		return false
	}
	var l []byte
	r.field(&l)
	if r.err != nil {
		return false
	}
	if r.n, r.err = strconv.ParseInt(string(l), 10, 64); r.err != nil {
		return false
	}
	for _, f := range []*[]byte{&r.hdr.PrivalVersion, &r.hdr.Time, &r.hdr.Hostname, &r.hdr.Name, &r.hdr.Procid, &r.hdr.Msgid} {
		r.field(f) // lpx reads all six even after an error
	}
	if r.err != nil {
		return false
	}
	r.msg = nil
	if r.n > 0 {
		r.msg = make([]byte, r.n)
		if _, r.err = io.ReadFull(r.r, r.msg); r.err != nil {
			if r.err == io.EOF {
				r.err = io.ErrUnexpectedEOF
			}
			return false
		}
	}
	return true
}

// field reads up to and including the next space, counts it against the
// frame and stores it without trailing spaces (lpx Reader.field).
func (r *lpxReader) field(b *[]byte) {
	g, err := r.r.ReadBytes(' ')
	if err != nil {
		r.err = err
		return
	}
	r.n -= int64(len(g))
	*b = bytes.TrimRight(g, " ")
}

// errLogfmtUnterminated is kr/logfmt's ErrUnterminatedString.
var errLogfmtUnterminated = errors.New("logfmt: unterminated string")

// logfmtIdent reports whether c may be in a key or a bare value: any byte
// above ' ' but '=' and '"' (kr/logfmt's ident_byte), bytes from 0x80 up
// included whatever they encode.
func logfmtIdent(c byte) bool {
	return c > ' ' && c != '"' && c != '='
}

// logfmtScan calls h for each pair of data as kr/logfmt's gotoScanner
// does, and returns the first error, of h or of the scan, after the whole
// of data is scanned.
func logfmtScan(data []byte, h func(key, val []byte) error) error {
	var first error
	save := func(err error) {
		if first == nil {
			first = err
		}
	}
	i := 0
	for {
		for i < len(data) && !logfmtIdent(data[i]) { // garbage
			i++
		}
		if i == len(data) {
			return first
		}
		m := i
		for i < len(data) && logfmtIdent(data[i]) {
			i++
		}
		key := data[m:i]
		if i == len(data) { // a key at the end
			save(h(key, nil))
			return first
		}
		if data[i] != '=' { // a key without '='; the byte after it is skipped
			save(h(key, nil))
			i++
			continue
		}
		i++
		if i == len(data) { // "key=" at the end
			save(h(key, nil))
			return first
		}
		switch c := data[i]; {
		case logfmtIdent(c): // a bare value; the byte after it is skipped
			m = i
			for i < len(data) && logfmtIdent(data[i]) {
				i++
			}
			save(h(key, data[m:i]))
			if i == len(data) {
				return first
			}
			i++
		case c == '"':
			m = i
			i++
			esc := false
			for i < len(data) && data[i] != '"' {
				if data[i] == '\\' {
					i += 2 // the escaped byte is skipped unseen
					esc = true
					continue
				}
				i++
			}
			if i >= len(data) {
				save(errLogfmtUnterminated)
				return first
			}
			i++
			val := data[m:i]
			if !esc {
				save(h(key, val[1:len(val)-1]))
				continue
			}
			v, ok := logfmtUnquote(val)
			if !ok {
				save(fmt.Errorf("logfmt: error unquoting bytes %q", val))
				continue // h is not called
			}
			save(h(key, v))
		default: // "key=" before a space (or '='): an empty value
			save(h(key, nil))
			i++
		}
	}
}

// logfmtUnquote decodes a quoted value that holds a backslash, quotes
// included, as kr/logfmt's unquoteBytes (encoding/json's rules): escapes
// \" \\ \/ \' \b \f \n \r \t \uXXXX (surrogate pairs joined, a lone
// surrogate as U+FFFD); a raw '"' or control byte below ' ' or any other
// escape fails; bytes that are not UTF-8 become U+FFFD, one per byte.
func logfmtUnquote(s []byte) ([]byte, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return nil, false
	}
	s = s[1 : len(s)-1]
	var b []byte
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			r++
			if r >= len(s) {
				return nil, false
			}
			switch e := s[r]; e {
			case '"', '\\', '/', '\'':
				b = append(b, e)
				r++
			case 'b', 'f', 'n', 'r', 't':
				b = append(b, map[byte]byte{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[e])
				r++
			case 'u':
				r--
				rr := logfmtU4(s[r:])
				if rr < 0 {
					return nil, false
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, logfmtU4(s[r:])); dec != unicode.ReplacementChar {
						r += 6
						b = utf8.AppendRune(b, dec)
						break
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
			default:
				return nil, false
			}
		case c == '"', c < ' ':
			return nil, false
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b = utf8.AppendRune(b, rr)
		}
	}
	return b, true
}

// logfmtU4 decodes \uXXXX at the start of s, or returns -1 (getu4).
func logfmtU4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	v, err := strconv.ParseUint(string(s[2:6]), 16, 64)
	if err != nil {
		return -1
	}
	return rune(v)
}

// lmFieldError is the strconv error a routerMsg field returned, with its
// key.
type lmFieldError struct {
	Key string
	Err error
}

func (e *lmFieldError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *lmFieldError) Unwrap() error { return e.Err }

// lmMillis is lumbermill's conversion of connect and service:
// strconv.Atoi(strings.TrimSuffix(v, "ms")).
func lmMillis(val []byte) (int, error) {
	return strconv.Atoi(strings.TrimSuffix(string(val), "ms"))
}

// lmRouterMsg is lumbermill's routerMsg, a line without " code=H".
type lmRouterMsg struct {
	Method, Path, Host, RequestID, Fwd, Dyno string
	Connect, Service, Status, Bytes          int
}

// handle is routerMsg.HandleLogfmt: a number that does not parse fails.
func (rm *lmRouterMsg) handle(key, val []byte) error {
	num := func(dst *int, conv func([]byte) (int, error)) error {
		v, err := conv(val)
		if err != nil {
			return &lmFieldError{Key: string(key), Err: err}
		}
		*dst = v
		return nil
	}
	atoi := func(v []byte) (int, error) { return strconv.Atoi(string(v)) }
	switch string(key) {
	case "method":
		rm.Method = string(val)
	case "path":
		rm.Path = string(val)
	case "host":
		rm.Host = string(val)
	case "request_id":
		rm.RequestID = string(val)
	case "fwd":
		rm.Fwd = string(val)
	case "dyno":
		rm.Dyno = string(val)
	case "connect":
		return num(&rm.Connect, lmMillis)
	case "service":
		return num(&rm.Service, lmMillis)
	case "status":
		return num(&rm.Status, atoi)
	case "bytes":
		return num(&rm.Bytes, atoi)
	}
	return nil
}

// lmRouterError is lumbermill's routerError, a line with " code=H".
type lmRouterError struct {
	At, Code, Desc, Method, Host, Fwd, Dyno, Path, RequestID string
	Connect, Service, Status, Bytes                          int
	Sock                                                     string
}

// handle is routerError.HandleLogfmt: numbers that do not parse are
// swallowed, leaving what strconv.Atoi returned (0 for an empty value).
func (re *lmRouterError) handle(key, val []byte) error {
	switch string(key) {
	case "at":
		re.At = string(val)
	case "code":
		re.Code = string(val)
	case "desc":
		re.Desc = string(val)
	case "method":
		re.Method = string(val)
	case "host":
		re.Host = string(val)
	case "fwd":
		re.Fwd = string(val)
	case "path":
		re.Path = string(val)
	case "request_id":
		re.RequestID = string(val)
	case "dyno":
		re.Dyno = string(val)
	case "connect":
		re.Connect, _ = lmMillis(val)
	case "service":
		re.Service, _ = lmMillis(val)
	case "status":
		re.Status, _ = strconv.Atoi(string(val))
	case "bytes":
		re.Bytes, _ = strconv.Atoi(string(val))
	case "sock":
		re.Sock = string(val)
	}
	return nil
}

// lmKind is the branch of serveDrain a router line took.
type lmKind int

const (
	lmRequest lmKind = iota + 1 // routerMsg: a routerRequest point
	lmError                     // routerError: a routerEvent point
	lmBlank                     // a blank app: counted, not parsed
)

// lmResult is what lumbermill made of one frame: an event, or dropped with
// the reason it was dropped.
type lmResult struct {
	kind      lmKind
	timestamp int64 // microseconds since the epoch, as posted
	msg       lmRouterMsg
	rerr      lmRouterError
	dropped   error
}

// Reasons serveDrain skips a frame without parsing its message.
var (
	errLmNoToken   = errors.New("no drain token")
	errLmNotHeroku = errors.New("not a heroku line")
	errLmNotRouter = errors.New("not a router line")
)

// lmDrain runs a drain POST body through serveDrain's router path, with
// token as the Logplex-Drain-Token header. It returns one result per frame
// and the lpx error that ended the body, if any.
func lmDrain(body []byte, token string) ([]lmResult, error) {
	lp := &lpxReader{r: bufio.NewReader(bytes.NewReader(body))}
	var out []lmResult
	for lp.next() {
		out = append(out, lmFrame(&lp.hdr, lp.msg, token))
	}
	if lp.err == io.EOF {
		return out, nil
	}
	return out, lp.err
}

// lmFrame is the body of serveDrain's loop for one frame.
func lmFrame(h *lpxHeader, msg []byte, id string) lmResult {
	if bytes.HasPrefix(h.Name, []byte("t.")) {
		id = string(h.Name)
	}
	if id == "" {
		return lmResult{dropped: errLmNoToken}
	}
	if string(h.Name) != "heroku" && !bytes.HasPrefix(h.Name, []byte("t.")) {
		return lmResult{dropped: errLmNotHeroku}
	}
	t, err := time.Parse("2006-01-02T15:04:05.000000+00:00", string(h.Time))
	if err != nil {
		if t, err = time.Parse("2006-01-02T15:04:05+00:00", string(h.Time)); err != nil {
			return lmResult{dropped: fmt.Errorf("parsing time: %w", err)}
		}
	}
	res := lmResult{timestamp: t.UnixNano() / int64(time.Microsecond)}
	if string(h.Procid) != "router" {
		return lmResult{dropped: errLmNotRouter}
	}
	switch {
	case bytes.Contains(msg, []byte(" code=H")):
		res.kind = lmError
		res.dropped = logfmtScan(msg, res.rerr.handle)
	case bytes.Contains(msg, []byte(" code=blank-app")), bytes.Contains(msg, []byte(` desc="Blank app"`)):
		res.kind = lmBlank
	default:
		res.kind = lmRequest
		res.dropped = logfmtScan(msg, res.msg.handle)
	}
	return res
}

// herokuFrame frames a router line as a Heroku log drain (logplex) sends
// it: "<n> <158>1 TIME host heroku router - MSG", n counting the bytes after
// its space, TIME the line's time and MSG the fields after the source,
// with the line's "\n" (as lumbermill's lpxgen frames router lines).
func herokuFrame(t testing.TB, line string) string {
	t.Helper()
	ts, rest, ok := strings.Cut(line, " ")
	require.True(t, ok, "no time in %q", line)
	_, msg, ok := strings.Cut(rest, ": ")
	require.True(t, ok, "no source in %q", line)
	frame := "<158>1 " + ts + " host heroku router - " + msg
	return strconv.Itoa(len(frame)) + " " + frame
}

// lmWant is what lumbermill must read from a line, from the line's own
// fields as decodeLine reads them.
func lmWant(t testing.TB, d decodedLine) lmResult {
	t.Helper()
	get := func(k string) string { v, _ := d.get(k); return v }
	num := func(k string) int {
		v := strings.TrimSuffix(get(k), "ms")
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "field %s", k)
		return n
	}
	ts, err := time.Parse(time.RFC3339Nano, d.time)
	require.NoError(t, err)
	want := lmResult{timestamp: ts.UnixMicro()}
	if _, ok := d.get("code"); ok {
		want.kind = lmError
		want.rerr = lmRouterError{
			At: get("at"), Code: get("code"), Desc: get("desc"), Sock: get("sock"),
			Method: get("method"), Path: get("path"), Host: get("host"), RequestID: get("request_id"),
			Fwd: get("fwd"), Dyno: get("dyno"),
			Connect: num("connect"), Service: num("service"), Status: num("status"), Bytes: num("bytes"),
		}
		return want
	}
	want.kind = lmRequest
	want.msg = lmRouterMsg{
		Method: get("method"), Path: get("path"), Host: get("host"), RequestID: get("request_id"),
		Fwd: get("fwd"), Dyno: get("dyno"),
		Connect: num("connect"), Service: num("service"), Status: num("status"), Bytes: num("bytes"),
	}
	return want
}

// checkLumbermillTakes asserts that lumbermill takes line, decoded as d,
// and reads the values d holds. A code-less line whose value holds
// " code=H" is read as a router error, and one holding " code=blank-app"
// is dropped by design; both only happen with arbitrary (fuzzed) values.
func checkLumbermillTakes(t *testing.T, line string, d decodedLine) {
	t.Helper()
	res, err := lmDrain([]byte(herokuFrame(t, line)), "t.token")
	if err != nil || len(res) != 1 {
		t.Fatalf("lpx framing of %q: %d frames, %v", line, len(res), err)
	}
	got := res[0]
	if got.dropped != nil {
		t.Fatalf("lumbermill drops %q: %v", line, got.dropped)
	}
	want := lmWant(t, d)
	switch {
	case got.kind == lmBlank:
		return
	case got.kind == lmError && want.kind == lmRequest:
		m := want.msg
		want.kind, want.msg, want.rerr = lmError, lmRouterMsg{}, lmRouterError{
			At: "info", Method: m.Method, Path: m.Path, Host: m.Host, RequestID: m.RequestID,
			Fwd: m.Fwd, Dyno: m.Dyno, Connect: m.Connect, Service: m.Service, Status: m.Status, Bytes: m.Bytes,
		}
	}
	if got != want {
		t.Fatalf("lumbermill read %q as\n%+v\nwant\n%+v", line, got, want)
	}
}

// TestLpxReaderPort runs the data of lpx's own reader_test.go through the
// port, to show it frames as lpx does.
func TestLpxReaderPort(t *testing.T) {
	t.Parallel()
	const data = "66 <174>1 2012-07-22T00:06:26-00:00 somehost Go console - Hi from Go\n" +
		"67 <174>1 2013-07-22T00:06:26-00:00 somehost Go console 10 Hi from Py\n"
	lp := &lpxReader{r: bufio.NewReader(strings.NewReader(data))}
	want := []struct {
		hdr lpxHeader
		msg string
	}{
		{lpxHeader{[]byte("<174>1"), []byte("2012-07-22T00:06:26-00:00"), []byte("somehost"), []byte("Go"), []byte("console"), []byte("-")}, "Hi from Go\n"},
		{lpxHeader{[]byte("<174>1"), []byte("2013-07-22T00:06:26-00:00"), []byte("somehost"), []byte("Go"), []byte("console"), []byte("10")}, "Hi from Py\n"},
	}
	for i, w := range want {
		require.True(t, lp.next(), "frame %d: %v", i, lp.err)
		assert.Equal(t, w.hdr, lp.hdr, "frame %d", i)
		assert.Equal(t, w.msg, string(lp.msg), "frame %d", i)
	}
	assert.False(t, lp.next())
	assert.ErrorIs(t, lp.err, io.EOF)

	short := &lpxReader{r: bufio.NewReader(strings.NewReader("99 <174>1 2012-07-22T00:06:26-00:00 h Go console - short\n"))}
	assert.False(t, short.next())
	assert.ErrorIs(t, short.err, io.ErrUnexpectedEOF)
}

// TestLogfmtPortScanner runs the cases of kr/logfmt's scanner_test.go and
// decode_test.go (TestDecodeCustom) through the port, and the cases that
// decide whether a router line is taken.
func TestLogfmtPortScanner(t *testing.T) {
	t.Parallel()
	type kv struct{ k, v string }
	tests := []struct {
		name string
		data string
		want []kv
		err  bool
	}{
		{"kr simple", `a=1 b="bar" ƒ=2h3s r="esc\t" d x=sf   `, []kv{{"a", "1"}, {"b", "bar"}, {"ƒ", "2h3s"}, {"r", "esc\t"}, {"d", ""}, {"x", "sf"}}, false},
		{"kr empty at end", `x= `, []kv{{"x", ""}}, false},
		{"kr equals at end", `y=`, []kv{{"y", ""}}, false},
		{"kr key only", `y`, []kv{{"y", ""}}, false},
		{"kr one pair", `y=f`, []kv{{"y", "f"}}, false},
		{"kr custom", `a=foo b=10ms c=cat E="123" d foo= emp=`, []kv{{"a", "foo"}, {"b", "10ms"}, {"c", "cat"}, {"E", "123"}, {"d", ""}, {"foo", ""}, {"emp", ""}}, false},
		{"kr unterminated", `foo="b`, nil, true},
		{"json escapes", `p="\"\\\/\u000a\u007f\ufffd\ud83d\ude00"`, []kv{{"p", "\"\\/\n\x7f\ufffd😀"}}, false},
		{"lone surrogate", `p="\ud800x"`, []kv{{"p", "\ufffdx"}}, false},
		{"raw bytes kept without a backslash", "p=\"\xff\" h=\xfe", []kv{{"p", "\xff"}, {"h", "\xfe"}}, false},
		{"invalid UTF-8 coerced with a backslash", "p=\"\xff\\\\\"", []kv{{"p", "\ufffd\\"}}, false},
		{"bad escape drops the pair", `p="\x" q=1`, []kv{{"q", "1"}}, true},
		{"raw control byte with a backslash", "p=\"\x01\\\\\"", nil, true},
		{"quote after a bare value is skipped", `a=b"c d`, []kv{{"a", "b"}, {"c", ""}, {"d", ""}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []kv
			err := logfmtScan([]byte(tt.data), func(k, v []byte) error {
				got = append(got, kv{string(k), string(v)})
				return nil
			})
			assert.Equal(t, tt.want, got, "scanning %q", tt.data)
			if tt.err {
				assert.Error(t, err, "scanning %q", tt.data)
			} else {
				assert.NoError(t, err, "scanning %q", tt.data)
			}
		})
	}
}

// TestLumbermillDropsEmptyTimings shows why SPEC.md section 7 makes a line
// without code= carry numbers in connect and service: the lines the router
// wrote for an unknown host's 404 and a CONNECT's 405 before, with connect=
// and service= empty, are dropped by lumbermill's routerMsg, while the same
// fields on a line with code= are taken (routerError swallows the error).
// AppendLine now writes 0ms there (TestLumbermillTakesRouterLines).
func TestLumbermillDropsEmptyTimings(t *testing.T) {
	t.Parallel()
	const prefix = "2026-11-23T12:00:00.123456+00:00 heroku[router]: "
	tests := []struct {
		name    string
		line    string
		dropKey string // "" when taken
	}{
		{
			name:    "unknown host 404 as written before",
			line:    `at=info method=GET path="/" host=nowhere.example.com request_id=9d1c3f0e-5b7a-4c2e-9f1d-2a6b8c0d4e1f fwd="203.0.113.7" dyno= connect= service= status=404 bytes=0 protocol=http1.1 tls=false`,
			dropKey: "connect",
		},
		{
			name:    "CONNECT 405 as written before",
			line:    `at=info method=CONNECT path="shop.example.com:443" host=shop.example.com request_id=9d1c3f0e-5b7a-4c2e-9f1d-2a6b8c0d4e1f fwd="203.0.113.7" dyno= connect= service= status=405 bytes=0 protocol=http1.1 tls=false`,
			dropKey: "connect",
		},
		{
			name:    "service alone empty",
			line:    `at=info method=GET path="/" host=shop.example.com request_id=x fwd="203.0.113.7" dyno=web.1 connect=1ms service= status=200 bytes=0 protocol=http1.1 tls=false`,
			dropKey: "service",
		},
		{
			name: "unknown host 404 as written now",
			line: `at=info method=GET path="/" host=nowhere.example.com request_id=9d1c3f0e-5b7a-4c2e-9f1d-2a6b8c0d4e1f fwd="203.0.113.7" dyno= connect=0ms service=0ms status=404 bytes=0 protocol=http1.1 tls=false`,
		},
		{
			name: "H10 with empty timings",
			line: `at=error code=H10 desc="App crashed" method=GET path="/" host=shop.example.com request_id=x fwd="203.0.113.7" dyno= connect= service= status=503 bytes=0 protocol=http1.1 tls=false`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := lmDrain([]byte(herokuFrame(t, prefix+tt.line+"\n")), "t.token")
			require.NoError(t, err)
			require.Len(t, res, 1)
			if tt.dropKey == "" {
				assert.NoError(t, res[0].dropped, "line %q", tt.line)
				return
			}
			var fe *lmFieldError
			require.ErrorAs(t, res[0].dropped, &fe, "line %q was taken", tt.line)
			assert.Equal(t, tt.dropKey, fe.Key)
			assert.ErrorIs(t, fe, strconv.ErrSyntax)
		})
	}
}

// goldenLine is one router line of a golden file.
type goldenLine struct{ name, line string }

// readGoldenLines returns every line of testdata/*.golden, named by file
// and case.
func readGoldenLines(t *testing.T) []goldenLine {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var out []goldenLine
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		name := ""
		for _, l := range strings.SplitAfter(string(data), "\n") {
			switch {
			case l == "":
			case strings.HasPrefix(l, "# "):
				name = filepath.Base(f) + ": " + strings.TrimSuffix(l[2:], "\n")
			default:
				out = append(out, goldenLine{name, l})
			}
		}
	}
	return out
}

// lumbermillDropsGolden are the golden lines lumbermill drops: code-less
// lines with status= or bytes= empty, which routerMsg parses with
// strconv.Atoi too. SPEC.md section 7 guarantees numbers only in connect
// and service; the router never writes such a line (a code-less line has
// a response status and body count), these are appender edge cases.
var lumbermillDropsGolden = map[string]string{
	"empty.golden: reset line": "status",
	"empty.golden: zero line":  "status",
	"empty.golden: no status":  "status",
}

// TestLumbermillTakesGoldenLines frames every golden line as a Heroku drain
// does, all in one drain body, and checks that lumbermill takes each one
// and reads the values the line holds (but lumbermillDropsGolden).
func TestLumbermillTakesGoldenLines(t *testing.T) {
	t.Parallel()
	lines := readGoldenLines(t)
	var body strings.Builder
	for _, g := range lines {
		body.WriteString(herokuFrame(t, g.line))
	}
	res, err := lmDrain([]byte(body.String()), "t.token")
	require.NoError(t, err)
	require.Len(t, res, len(lines), "frames lost or split")
	for i, g := range lines {
		t.Run(g.name, func(t *testing.T) {
			d, err := decodeLine(g.line)
			require.NoError(t, err)
			got := res[i]
			if key, ok := lumbermillDropsGolden[g.name]; ok {
				var fe *lmFieldError
				require.ErrorAs(t, got.dropped, &fe, "line %q was taken", g.line)
				assert.Equal(t, key, fe.Key, "line %q", g.line)
				return
			}
			require.NoError(t, got.dropped, "lumbermill drops %q", g.line)
			assert.Equal(t, lmWant(t, d), got, "line %q", g.line)
		})
	}
}

// TestLumbermillTakesRouterLines renders the lines of every H code, in
// every shape of empty fields SPEC.md section 7 names, and the code-less
// shapes (success, unknown host 404, CONNECT 405, with the timings the
// router passes for them), and checks that lumbermill takes each one with
// the values of the Line.
func TestLumbermillTakesRouterLines(t *testing.T) {
	t.Parallel()
	type shape struct {
		name string
		set  func(l *Line)
	}
	shapes := []shape{
		{"dyno reached", func(l *Line) {}},
		{"no dyno", func(l *Line) { l.Dyno, l.Connect, l.Service = "", -1, -1 }},                 // H10, H11, H25 request, H26, H31, H80
		{"connect only", func(l *Line) { l.Connect, l.Service, l.Bytes = 5*time.Second, -1, 0 }}, // H19, H21
		{"no bytes", func(l *Line) { l.Bytes = -1 }},                                             // H27
		{"no status", func(l *Line) { l.Status, l.Bytes = 0, -1 }},                               // H26 over HTTP/2
	}
	type routerCase struct {
		name string
		line Line
	}
	var cases []routerCase
	for _, c := range errcodes.All() {
		ent := c.Entry()
		for _, s := range shapes {
			l := with(func(l *Line) { l.Code, l.Status = c, ent.Status })
			s.set(&l)
			cases = append(cases, routerCase{fmt.Sprintf("%s %s %s/%s", ent.H, ent.Desc, ent.Cause, s.name), l})
		}
	}
	cases = append(cases,
		routerCase{"success", baseLine()},
		routerCase{"success http2 tls", with(func(l *Line) { l.Protocol, l.TLS, l.TLSVersion = HTTP20, true, 0x0304 })},
		routerCase{"unknown host 404", with(func(l *Line) {
			l.Host, l.Dyno, l.Connect, l.Service, l.Status, l.Bytes = []byte("nowhere.example.com"), "", -1, -1, 404, 0
		})},
		routerCase{"CONNECT 405", with(func(l *Line) {
			l.Method, l.Path, l.Dyno, l.Connect, l.Service, l.Status, l.Bytes = []byte("CONNECT"), []byte("shop.example.com:443"), "", -1, -1, 405, 0
		})},
		routerCase{"escapes and invalid UTF-8", with(func(l *Line) {
			l.Path, l.Host, l.Fwd = []byte("/a\"b\\c\n\xff?q=é\x00"), []byte("h\xc3st"), []byte("1.2.3.4\xfe")
			l.Method, l.RequestID, l.Dyno = []byte("G T"), []byte("id=\x80"), "web 1"
		})},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			line := string(AppendLine(nil, &c.line, "heroku[router]", nil))
			res, err := lmDrain([]byte(herokuFrame(t, line)), "t.token")
			require.NoError(t, err)
			require.Len(t, res, 1)
			got := res[0]
			require.NoError(t, got.dropped, "lumbermill drops %q", line)

			l := c.line
			ent := l.Code.Entry()
			ms := func(d time.Duration) int { return int(max(d, 0) / time.Millisecond) }
			str := func(b []byte) string { return replaceInvalid(string(b)) }
			want := lmResult{timestamp: l.Time.UnixMicro()}
			if ent.H == "" {
				want.kind, want.msg = lmRequest, lmRouterMsg{
					Method: str(l.Method), Path: percentInvalid(string(l.Path)), Host: str(l.Host),
					RequestID: str(l.RequestID), Fwd: str(l.Fwd), Dyno: replaceInvalid(l.Dyno),
					Connect: ms(l.Connect), Service: ms(l.Service), Status: l.Status, Bytes: int(max(l.Bytes, 0)),
				}
			} else {
				want.kind, want.rerr = lmError, lmRouterError{
					At: ent.Level, Code: ent.H, Desc: ent.Desc, Sock: ent.Sock,
					Method: str(l.Method), Path: percentInvalid(string(l.Path)), Host: str(l.Host),
					RequestID: str(l.RequestID), Fwd: str(l.Fwd), Dyno: replaceInvalid(l.Dyno),
					Connect: ms(l.Connect), Service: ms(l.Service), Status: l.Status, Bytes: int(max(l.Bytes, 0)),
				}
			}
			assert.Equal(t, want, got, "line %q", line)
		})
	}
}
