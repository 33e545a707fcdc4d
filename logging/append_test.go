package logging

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/errcodes"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// testTime is the time of the SPEC.md section 7 examples.
var testTime = time.Date(2026, 11, 23, 12, 0, 0, 123456000, time.UTC)

// lineCase is one router line to render.
type lineCase struct {
	name   string
	line   Line
	redact []string
	// wantPath is the path= value when redaction changes it.
	wantPath string
}

// path returns the path= value c must produce.
func (c lineCase) path() string {
	if c.wantPath != "" {
		return c.wantPath
	}
	return string(c.line.Path)
}

// baseLine returns a successful HTTP/1.1 request over plain HTTP.
func baseLine() Line {
	return Line{
		Time:      testTime,
		Method:    []byte("GET"),
		Path:      []byte("/search?q=1"),
		Host:      []byte("shop.example.com"),
		RequestID: []byte("9d1c3f0e-5b7a-4c2e-9f1d-2a6b8c0d4e1f"),
		Fwd:       []byte("203.0.113.7"),
		Dyno:      "web.1",
		Connect:   1 * time.Millisecond,
		Service:   18 * time.Millisecond,
		Status:    200,
		Bytes:     975,
		Protocol:  HTTP11,
	}
}

// with returns baseLine changed by f.
func with(f func(l *Line)) Line {
	l := baseLine()
	f(&l)
	return l
}

// withPath returns baseLine with path p.
func withPath(p string) Line {
	return with(func(l *Line) { l.Path = []byte(p) })
}

// caseGroups are the golden files and their cases.
func caseGroups() map[string][]lineCase {
	return map[string][]lineCase{
		"success":  successCases(),
		"codes":    codeCases(),
		"empty":    emptyCases(),
		"escape":   escapeCases(),
		"redact":   redactCases(),
		"protocol": protocolCases(),
		"mtls":     mtlsCases(),
		"dynotls":  dynoTLSCases(),
	}
}

// dynoTLSCases are the H43 lines of SPEC.md section 12.4: the dyno's
// certificate failed verification during the connect, so the line names
// the dyno and the connect time (TCP and the TLS handshake) and has no
// service time, as H19 and H21.
func dynoTLSCases() []lineCase {
	var cases []lineCase
	for _, c := range []errcodes.Code{errcodes.DynoCertExpired, errcodes.DynoCertUnknownCA,
		errcodes.DynoCertNameMismatch, errcodes.DynoCertBadUsage} {
		cases = append(cases, lineCase{name: "H43 " + c.Entry().Cause, line: with(func(l *Line) {
			l.Code, l.Connect, l.Service, l.Status, l.Bytes = c, 3*time.Millisecond, -1, 503, 0
		})})
	}
	return append(cases, lineCase{name: "H43 over http2.0 and tls", line: with(func(l *Line) {
		l.Code, l.Connect, l.Service, l.Status, l.Bytes = errcodes.DynoCertNameMismatch, 2*time.Millisecond, -1, 503, 0
		l.TLS, l.TLSVersion, l.Protocol = true, tls.VersionTLS13, HTTP20
	})})
}

// mtlsCases are the lines of SPEC.md section 11: H40–H42 with no dyno, and
// client_cert= after the last field of a request with a verified client
// certificate.
func mtlsCases() []lineCase {
	noDyno := func(code errcodes.Code, status int) func(l *Line) {
		return func(l *Line) {
			l.Code, l.Status, l.Bytes = code, status, 12
			l.Dyno, l.Connect, l.Service = "", -1, -1
			l.TLS, l.TLSVersion = true, tls.VersionTLS13
		}
	}
	cases := []lineCase{
		{name: "verified client certificate", line: with(func(l *Line) {
			l.TLS, l.TLSVersion, l.ClientCert = true, tls.VersionTLS13, []byte("3f2a9c0d1e4b5a67")
		})},
		{name: "verified client certificate http2.0", line: with(func(l *Line) {
			l.TLS, l.TLSVersion, l.Protocol, l.ClientCert = true, tls.VersionTLS12, HTTP20, []byte("00ff00ff00ff00ff")
		})},
		{name: "H40 no certificate", line: with(noDyno(errcodes.ClientCertRequired, 496))},
	}
	for _, c := range []errcodes.Code{errcodes.ClientCertExpired, errcodes.ClientCertUnknownCA, errcodes.ClientCertRevoked,
		errcodes.ClientCertBadUsage, errcodes.ClientCertRetiredCA} {
		cases = append(cases, lineCase{name: "H41 " + c.Entry().Cause, line: with(noDyno(c, 495))})
	}
	h42 := with(noDyno(errcodes.ForbiddenByIPRule, 403))
	h42.TLS, h42.TLSVersion = false, 0
	return append(cases, lineCase{name: "H42 plain http", line: h42})
}

func successCases() []lineCase {
	return []lineCase{
		{name: "plain http1.1", line: baseLine()},
		{name: "tls1.3", line: with(func(l *Line) { l.TLS, l.TLSVersion = true, tls.VersionTLS13 })},
		{name: "tls1.2 http2.0", line: with(func(l *Line) {
			l.TLS, l.TLSVersion, l.Protocol = true, tls.VersionTLS12, HTTP20
		})},
		{name: "tls1.1", line: with(func(l *Line) { l.TLS, l.TLSVersion = true, tls.VersionTLS11 })},
		{name: "tls1.0", line: with(func(l *Line) { l.TLS, l.TLSVersion = true, tls.VersionTLS10 })},
		{name: "unknown tls version", line: with(func(l *Line) { l.TLS, l.TLSVersion = true, 0x0300 })},
		{name: "tls version without tls", line: with(func(l *Line) { l.TLSVersion = tls.VersionTLS13 })},
		{name: "nanoseconds truncated", line: with(func(l *Line) {
			l.Time = time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC)
		})},
		{name: "whole second", line: with(func(l *Line) { l.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) })},
		{name: "non-UTC time written in UTC", line: with(func(l *Line) {
			l.Time = time.Date(2026, 11, 23, 13, 30, 0, 1000, time.FixedZone("CET", 3600))
		})},
		{name: "milliseconds truncated", line: with(func(l *Line) {
			l.Connect, l.Service = 1999999*time.Nanosecond, 30*time.Second+999*time.Microsecond
		})},
		{name: "POST large body", line: with(func(l *Line) {
			l.Method, l.Status, l.Bytes = []byte("POST"), 201, 1<<40
		})},
		{name: "fwd list", line: with(func(l *Line) { l.Fwd = []byte("198.51.100.1, 203.0.113.7") })},
	}
}

// codeCases has one line per errcodes code.
func codeCases() []lineCase {
	var cases []lineCase
	for _, c := range errcodes.All() {
		ent := c.Entry()
		cases = append(cases, lineCase{
			name: fmt.Sprintf("%s %s %s %d", ent.H, ent.Desc, ent.Cause, ent.Status),
			line: with(func(l *Line) { l.Code, l.Status = c, ent.Status }),
		})
	}
	return cases
}

func emptyCases() []lineCase {
	reset := func() Line {
		var l Line
		l.Reset()
		l.Time = testTime
		return l
	}
	return []lineCase{
		{name: "reset line", line: reset()},
		{name: "zero line", line: Line{Time: testTime}},
		{name: "H10 no dyno", line: with(func(l *Line) {
			l.Code, l.Dyno, l.Connect, l.Service, l.Status, l.Bytes = errcodes.AppCrashed, "", -1, -1, 503, 0
		})},
		{name: "H19 connect without service", line: with(func(l *Line) {
			l.Code, l.Connect, l.Service, l.Status, l.Bytes = errcodes.BackendConnectionTimeout, 5*time.Second, -1, 503, 0
		})},
		{name: "H27 no bytes", line: with(func(l *Line) {
			l.Code, l.Status, l.Bytes, l.Protocol = errcodes.ClientInterrupted, 499, -1, HTTP20
			l.TLS, l.TLSVersion = true, tls.VersionTLS12
		})},
		{name: "no status", line: with(func(l *Line) { l.Status = 0 })},
		{name: "empty fwd", line: with(func(l *Line) { l.Fwd = nil })},
		// SPEC.md section 7: a line without code= carries 0ms in connect
		// and service even when the caller left them empty.
		{name: "unknown host 404 with empty timings", line: with(func(l *Line) {
			l.Host, l.Dyno, l.Connect, l.Service, l.Status, l.Bytes = []byte("nowhere.example.com"), "", -1, -1, 404, 0
		})},
		{name: "CONNECT 405 with empty timings", line: with(func(l *Line) {
			l.Method, l.Path, l.Dyno, l.Connect, l.Service, l.Status, l.Bytes = []byte("CONNECT"), []byte("shop.example.com:443"), "", -1, -1, 405, 0
		})},
		{name: "no code, empty service only", line: with(func(l *Line) { l.Service = -1 })},
		{name: "H31 keeps empty timings", line: with(func(l *Line) {
			l.Code, l.Dyno, l.Connect, l.Service, l.Status, l.Bytes = errcodes.MisdirectedRequest, "", -1, -1, 421, 0
		})},
		{name: "H21 keeps empty service", line: with(func(l *Line) {
			l.Code, l.Connect, l.Service, l.Status, l.Bytes = errcodes.BackendConnectionRefused, 0, -1, 503, 0
		})},
	}
}

func escapeCases() []lineCase {
	return []lineCase{
		{name: "double quote", line: withPath(`/a"b?q="x"`)},
		{name: "backslash", line: withPath(`/a\b\\c\"`)},
		{name: "newline and CR", line: withPath("/a\nb\r\nc")},
		{name: "tab NUL ESC DEL", line: withPath("/\t\x00\x1b\x7f\x1f")},
		{name: "UTF-8", line: withPath("/ünïcødé/日本?q=€")},
		{name: "invalid UTF-8", line: withPath("/\xff\xfe\x80")},
		{name: "invalid UTF-8 sequences in path", line: withPath(
			// truncated 2-, 3- and 4-byte forms, an overlong '/', a
			// surrogate, a code point above U+10FFFF, then valid U+FFFD
			"/\xc3/\xe2\x82/\xf0\x9f\x98/\xc0\xaf/\xed\xa0\x80/\xf4\x90\x80\x80/\xef\xbf\xbd?q=\xe9t\xe9")},
		{name: "literal percent in path stays", line: withPath("/%FF%zz%/\xff%")},
		{name: "invalid UTF-8 next to escapes", line: withPath("/\"\xff\n\x80\\")},
		{name: "invalid UTF-8 in quoted values", line: with(func(l *Line) { l.Fwd = []byte("1.2.3.4\xc3, \xff5") })},
		{name: "invalid UTF-8 in bare values", line: with(func(l *Line) {
			l.Method, l.Host, l.RequestID, l.Dyno = []byte("G\x80T"), []byte("sh\xffop.example.com"), []byte("id-\xfe\xfe"), "web\xc0.1"
		})},
		{name: "valid UTF-8 in bare values stays bare", line: with(func(l *Line) {
			l.Host, l.Dyno = []byte("bücher.example.com"), "wéb.1"
		})},
		{name: "space", line: withPath("/a b")},
		{name: "empty path", line: withPath("")},
		{name: "fwd with quote and newline", line: with(func(l *Line) { l.Fwd = []byte("1.2.3.4\"\n5") })},
		{name: "unsafe bare values", line: with(func(l *Line) {
			l.Method, l.Host, l.RequestID, l.Dyno = []byte("G T"), []byte("a=b\"c\n"), []byte("id\x7f\x00"), "web 1"
		})},
	}
}

func redactCases() []lineCase {
	red := []string{"token", "password", "api key", "pass word"}
	cases := []struct{ name, path, want string }{
		{"several", "/login?user=bob&password=hunter2&token=abc", "/login?user=bob&password=REDACTED&token=REDACTED"},
		{"first", "/x?token=abc&a=1", "/x?token=REDACTED&a=1"},
		{"last", "/x?a=1&token=abc", "/x?a=1&token=REDACTED"},
		{"repeated", "/x?token=a&token=b&token=", "/x?token=REDACTED&token=REDACTED&token=REDACTED"},
		{"key without value", "/x?token&password=p&", "/x?token&password=REDACTED&"},
		{"percent-encoded key", "/x?%74oken=a&pass%77ord=b&%zzoken=c", "/x?%74oken=REDACTED&pass%77ord=REDACTED&%zzoken=c"},
		{"plus and %20 in key", "/x?api+key=a&pass%20word=b", "/x?api+key=REDACTED&pass%20word=REDACTED"},
		{"case sensitive", "/x?Token=a&TOKEN=b", "/x?Token=a&TOKEN=b"},
		{"value with equals", "/x?token=a=b&c=d", "/x?token=REDACTED&c=d"},
		{"no query", "/token=a", "/token=a"},
		{"empty query", "/x?", "/x?"},
		{"empty params", "/x?&&token=a&&", "/x?&&token=REDACTED&&"},
		{"second question mark", "/x?a=?&token=b?c", "/x?a=?&token=REDACTED"},
		{"escaped key", "/x?to\"ken=a&token=\"b\n", "/x?to\"ken=a&token=REDACTED"},
		{"suffix of a name", "/x?oken=a&tokens=b", "/x?oken=a&tokens=b"},
		{"invalid UTF-8 around", "/\xff?t\xffoken=a&token=\xff&\xff=1&token\xff=2", "/\xff?t\xffoken=a&token=REDACTED&\xff=1&token\xff=2"},
	}
	out := make([]lineCase, len(cases))
	for i, c := range cases {
		out[i] = lineCase{name: c.name, line: withPath(c.path), redact: red, wantPath: c.want}
	}
	return out
}

func protocolCases() []lineCase {
	return []lineCase{
		{name: "http1.0", line: with(func(l *Line) { l.Protocol = HTTP10 })},
		{name: "http1.1", line: with(func(l *Line) { l.Protocol = HTTP11 })},
		{name: "http2.0 tls1.3", line: with(func(l *Line) { l.Protocol, l.TLS, l.TLSVersion = HTTP20, true, tls.VersionTLS13 })},
		{name: "unknown protocol", line: with(func(l *Line) { l.Protocol = Protocol(9) })},
	}
}

// TestAppendLineSpec checks the examples of SPEC.md section 7 verbatim.
func TestAppendLineSpec(t *testing.T) {
	t.Parallel()
	id := []byte("9d1c3f0e-5b7a-4c2e-9f1d-2a6b8c0d4e1f")
	tests := []struct {
		name string
		line Line
		want string
	}{
		{
			name: "info",
			line: with(func(l *Line) { l.TLS, l.TLSVersion = true, tls.VersionTLS13 }),
			want: `2026-11-23T12:00:00.123456+00:00 heroku[router]: at=info method=GET path="/search?q=1" host=shop.example.com request_id=9d1c3f0e-5b7a-4c2e-9f1d-2a6b8c0d4e1f fwd="203.0.113.7" dyno=web.1 connect=1ms service=18ms status=200 bytes=975 protocol=http1.1 tls=true tls_version=tls1.3` + "\n",
		},
		{
			name: "H12",
			line: with(func(l *Line) {
				l.Time = l.Time.Add(100 * time.Millisecond)
				l.Code, l.Path, l.Connect, l.Service, l.Status, l.Bytes = errcodes.RequestTimeout, []byte("/slow"), 0, 30*time.Second, 503, 0
			}),
			want: `2026-11-23T12:00:00.223456+00:00 heroku[router]: at=error code=H12 desc="Request timeout" method=GET path="/slow" host=shop.example.com request_id=9d1c3f0e-5b7a-4c2e-9f1d-2a6b8c0d4e1f fwd="203.0.113.7" dyno=web.1 connect=0ms service=30000ms status=503 bytes=0 protocol=http1.1 tls=false` + "\n",
		},
		{
			name: "H27",
			line: with(func(l *Line) {
				l.Time = l.Time.Add(200 * time.Millisecond)
				l.Code, l.Method, l.Path, l.Service, l.Status, l.Bytes = errcodes.ClientInterrupted, []byte("POST"), []byte("/upload"), 4*time.Millisecond, 499, -1
				l.Protocol, l.TLS, l.TLSVersion = HTTP20, true, tls.VersionTLS12
			}),
			want: `2026-11-23T12:00:00.323456+00:00 heroku[router]: sock=client at=warning code=H27 desc="Client Request Interrupted" method=POST path="/upload" host=shop.example.com request_id=9d1c3f0e-5b7a-4c2e-9f1d-2a6b8c0d4e1f fwd="203.0.113.7" dyno=web.1 connect=1ms service=4ms status=499 bytes= protocol=http2.0 tls=true tls_version=tls1.2` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.line.RequestID = id
			got := string(AppendLine(nil, &tt.line, "heroku[router]", nil))
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestAppendLineGolden compares every case with testdata/<group>.golden;
// run with -update to rewrite the files after checking the diff.
func TestAppendLineGolden(t *testing.T) {
	t.Parallel()
	for group, cases := range caseGroups() {
		t.Run(group, func(t *testing.T) {
			t.Parallel()
			var got bytes.Buffer
			for _, c := range cases {
				fmt.Fprintf(&got, "# %s\n", c.name)
				got.Write(AppendLine(nil, &c.line, "heroku[router]", c.redact))
			}
			file := filepath.Join("testdata", group+".golden")
			if *update {
				require.NoError(t, os.WriteFile(file, got.Bytes(), 0o644))
				return
			}
			want, err := os.ReadFile(file)
			require.NoError(t, err, "run go test -update to create %s", file)
			assert.Equal(t, string(want), got.String(), "lines differ from %s", file)
		})
	}
}

// TestAppendLineRoundTrip decodes every rendered line and checks each
// field against the input, computed independently of the appender.
func TestAppendLineRoundTrip(t *testing.T) {
	t.Parallel()
	for group, cases := range caseGroups() {
		for _, c := range cases {
			t.Run(group+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				out := string(AppendLine(nil, &c.line, "heroku[router]", c.redact))
				d, err := decodeLine(out)
				require.NoError(t, err, "decoding %q", out)
				assert.Equal(t, "heroku[router]", d.source)
				wantTime := c.line.Time.UTC().Truncate(time.Microsecond)
				gotTime, err := time.Parse(time.RFC3339Nano, d.time)
				require.NoError(t, err, "time %q", d.time)
				assert.True(t, wantTime.Equal(gotTime), "time %q, want %v", d.time, wantTime)
				assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`, d.time)
				assert.Equal(t, wantFields(c), d.fields, "line %q", out)
			})
		}
	}
}

// wantFields is what the fields of c's line must decode to, written from
// SPEC.md section 7 without the appender's helpers.
func wantFields(c lineCase) []field {
	l := c.line
	ent := l.Code.Entry()
	var fs []field
	add := func(k, v string) { fs = append(fs, field{k, v}) }
	if ent.Sock != "" {
		add("sock", ent.Sock)
	}
	if ent.H == "" {
		add("at", "info")
	} else {
		add("at", ent.Level)
		add("code", ent.H)
		add("desc", ent.Desc)
		if ent.Cause != "" {
			add("cause", ent.Cause)
		}
	}
	ms := func(d time.Duration) string {
		if d < 0 && ent.H == "" {
			return "0ms" // a line without code= always carries numbers
		}
		if d < 0 {
			return ""
		}
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	status, size := "", ""
	if l.Status != 0 {
		status = strconv.Itoa(l.Status)
	}
	if l.Bytes >= 0 {
		size = strconv.FormatInt(l.Bytes, 10)
	}
	add("method", replaceInvalid(string(l.Method)))
	add("path", percentInvalid(c.path()))
	add("host", replaceInvalid(string(l.Host)))
	add("request_id", replaceInvalid(string(l.RequestID)))
	add("fwd", replaceInvalid(string(l.Fwd)))
	add("dyno", replaceInvalid(l.Dyno))
	add("connect", ms(l.Connect))
	add("service", ms(l.Service))
	add("status", status)
	add("bytes", size)
	proto, ok := map[Protocol]string{HTTP10: "http1.0", HTTP11: "http1.1", HTTP20: "http2.0"}[l.Protocol]
	if !ok {
		proto = "unknown"
	}
	add("protocol", proto)
	add("tls", strconv.FormatBool(l.TLS))
	if l.TLS {
		v, ok := map[uint16]string{0x0301: "tls1.0", 0x0302: "tls1.1", 0x0303: "tls1.2", 0x0304: "tls1.3"}[l.TLSVersion]
		if !ok {
			v = "unknown"
		}
		add("tls_version", v)
	}
	if len(l.ClientCert) > 0 {
		add("client_cert", replaceInvalid(string(l.ClientCert)))
	}
	return fs
}

func TestAppendLineAppends(t *testing.T) {
	t.Parallel()
	l := baseLine()
	dst := []byte("previous\n")
	out := AppendLine(dst, &l, "src", nil)
	require.True(t, bytes.HasPrefix(out, []byte("previous\n2026-11-23T12:00:00.123456+00:00 src: at=info ")), "got %q", out)
}

func TestAppendLineYearOutsideFourDigits(t *testing.T) {
	t.Parallel()
	l := with(func(l *Line) { l.Time = time.Date(10000, 1, 1, 0, 0, 0, 5000, time.UTC) })
	out := string(AppendLine(nil, &l, "src", nil))
	assert.True(t, strings.HasPrefix(out, "10000-01-01T00:00:00.000005+00:00 src: "), "got %q", out)
}

func TestAppendLineAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are unreliable under -short and -race")
	}
	l := with(func(l *Line) {
		l.Path = []byte("/login?user=b\"ob&pass%77ord=x&token=\n&q=\xffé")
		l.Host, l.Fwd, l.Dyno = []byte("h\xc3st"), []byte("1.2.3.4\xfe"), "web\xff.1"
		l.Code, l.TLS, l.TLSVersion = errcodes.BadHeader, true, tls.VersionTLS13
	})
	redact := []string{"password", "token"}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendLine(buf[:0], &l, "heroku[router]", redact)
	})
	assert.Zero(t, allocs, "AppendLine allocated")
}

func BenchmarkAppendLine(b *testing.B) {
	l := with(func(l *Line) { l.TLS, l.TLSVersion = true, tls.VersionTLS13 })
	l.Path = []byte("/login?user=bob&password=hunter2&q=some+search")
	redact := []string{"password", "token"}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendLine(buf[:0], &l, "heroku[router]", redact)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendLineUTF8 is BenchmarkAppendLine with non-ASCII text in
// the path and host, and bytes that are not UTF-8 in the path and fwd.
func BenchmarkAppendLineUTF8(b *testing.B) {
	l := with(func(l *Line) { l.TLS, l.TLSVersion = true, tls.VersionTLS13 })
	l.Path = []byte("/suche/bücher/日本語?q=café+crème&password=hunter2&raw=\xff\xfe")
	l.Host, l.Fwd = []byte("bücher.example.com"), []byte("203.0.113.7\xc3")
	redact := []string{"password", "token"}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendLine(buf[:0], &l, "heroku[router]", redact)
	}
	b.SetBytes(int64(len(buf)))
}

// FuzzAppendLine feeds arbitrary path, host, fwd and bare-value bytes
// (the last for method, request_id and dyno): the output is always one
// line of valid UTF-8 in the fixed field order; fwd and the bare values
// decode back to their bytes with U+FFFD for each byte that is not UTF-8;
// path decodes to its bytes with %XX for each byte that is not UTF-8, so a
// path that is valid UTF-8 comes back exactly and one without a '%' of its
// own comes back exactly after percent-decoding; and lumbermill's parser
// (lumbermill_test.go) takes the line and reads the same values.
func FuzzAppendLine(f *testing.F) {
	f.Add([]byte("/search?q=1"), []byte("shop.example.com"), []byte("203.0.113.7"), []byte("GET"))
	f.Add([]byte("/a\"b\\c\n\r\x00\x7f\xff"), []byte("a b=c\"\n"), []byte("\""), []byte("id="))
	f.Add([]byte("/x?token=a&password=b&%74oken=c"), []byte(""), []byte(""), []byte(""))
	f.Add([]byte("\\u0020"), []byte("\\"), []byte("\\u00"), []byte("\\ufffd"))
	f.Add([]byte("/\xc3/\xe2\x82/\xed\xa0\x80/%FF\xff"), []byte("h\xffst"), []byte("1.2.3.4\xc3"), []byte("web\xc0.1"))
	f.Add([]byte("/é?q=日本&token=\xf4\x90\x80\x80"), []byte("bücher.example"), []byte("\xef\xbf\xbd"), []byte("wéb.1"))
	f.Add([]byte("/x code=H10"), []byte("a code=H12"), []byte(" code=blank-app"), []byte("x"))
	f.Fuzz(func(t *testing.T, path, host, fwd, bare []byte) {
		l := baseLine()
		l.Path, l.Host, l.Fwd = path, host, fwd
		l.Method, l.RequestID, l.Dyno = bare, bare, string(bare)
		out := string(AppendLine(nil, &l, "heroku[router]", nil))
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || strings.Contains(out, "\r") {
			t.Fatalf("not a single line: %q", out)
		}
		if !utf8.ValidString(out) {
			t.Fatalf("not valid UTF-8: %q", out)
		}
		d, err := decodeLine(out)
		if err != nil {
			t.Fatalf("decoding %q: %v", out, err)
		}
		want := []string{"at", "method", "path", "host", "request_id", "fwd", "dyno", "connect", "service", "status", "bytes", "protocol", "tls"}
		if got := d.keys(); !slices.Equal(got, want) {
			t.Fatalf("keys %q, want %q in %q", got, want, out)
		}
		gotPath, _ := d.get("path")
		if wantPath := percentInvalid(string(path)); gotPath != wantPath {
			t.Fatalf("path decoded to %q, want %q", gotPath, wantPath)
		}
		if utf8.Valid(path) && gotPath != string(path) {
			t.Fatalf("valid UTF-8 path decoded to %q, want %q", gotPath, path)
		}
		if !bytes.Contains(path, []byte("%")) && percentDecodeHigh(gotPath) != string(path) {
			t.Fatalf("path %q percent-decodes to %q, want %q", gotPath, percentDecodeHigh(gotPath), path)
		}
		for _, kv := range []struct {
			key string
			in  []byte
		}{{"host", host}, {"fwd", fwd}, {"method", bare}, {"request_id", bare}, {"dyno", bare}} {
			if got, _ := d.get(kv.key); got != replaceInvalid(string(kv.in)) {
				t.Fatalf("%s decoded to %q, want %q", kv.key, got, replaceInvalid(string(kv.in)))
			}
		}
		checkLumbermillTakes(t, out, d)

		// With redaction the line is still one well-formed line.
		red := string(AppendLine(nil, &l, "heroku[router]", []string{"token", "a b", ""}))
		if _, err := decodeLine(red); err != nil {
			t.Fatalf("decoding redacted %q: %v", red, err)
		}
	})
}

// TestValidUTF8Len checks validUTF8Len against utf8.DecodeRune on every
// 1-, 2- and 3-byte input that starts with a non-ASCII byte and on 4-byte
// inputs built from the boundary values of each position, for strings and
// byte slices.
func TestValidUTF8Len(t *testing.T) {
	t.Parallel()
	want := func(p []byte) int {
		if r, n := utf8.DecodeRune(p); r != utf8.RuneError || n != 1 {
			return n
		}
		return 0
	}
	check := func(p []byte) {
		if got, w := validUTF8Len(p), want(p); got != w {
			t.Fatalf("validUTF8Len(%q) = %d, want %d", p, got, w)
		}
		if got, w := validUTF8Len(string(p)), want(p); got != w {
			t.Fatalf("validUTF8Len(string %q) = %d, want %d", p, got, w)
		}
	}
	edges := []byte{0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff}
	for c0 := 0x80; c0 <= 0xff; c0++ {
		check([]byte{byte(c0)})
		for c1 := range 256 {
			check([]byte{byte(c0), byte(c1)})
			for c2 := range 256 {
				check([]byte{byte(c0), byte(c1), byte(c2)})
			}
			for _, c2 := range edges {
				for _, c3 := range edges {
					check([]byte{byte(c0), byte(c1), c2, c3})
				}
			}
		}
	}
}
