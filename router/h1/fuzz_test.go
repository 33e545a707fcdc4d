package h1

import (
	"bytes"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// fuzzLimits are small, so random inputs reach every size check.
func fuzzLimits() Limits {
	return Limits{
		StartLine:   64,
		Method:      8,
		FieldName:   16,
		Field:       48,
		Cookie:      96,
		HeadersSize: 256,
		FieldCount:  6,
	}
}

// requestSeeds are inputs for FuzzParseRequest beyond the table cases:
// framing obfuscations, bare CR, obs-fold, NUL and oversized fields.
var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\nx",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
	"GET / HTTP/1.1\rHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nCookie: " + strings.Repeat("c", 200) + "\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("v", 100) + "\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 10) + "\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, x-a\r\nUpgrade: websocket\r\nX-A: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
	"\r\n\nGET / HTTP/1.0\n\n",
}

// responseSeeds are the FuzzParseResponse counterparts.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nSet-Cookie: " + strings.Repeat("c", 200) + "\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
	"HTTP/1.1 20\r\n\r\n",
	"ICY 200 OK\r\n\r\n",
}

// chunkSeeds are FuzzChunked raw inputs.
var chunkSeeds = []string{
	"5\r\nhello\r\n0\r\n\r\n",
	"0x10\r\n0123456789abcdef\r\n0\r\n\r\n",
	"10 ;ext\r\n0123456789abcdef\r\n0\r\n\r\n",
	"1\nx\r\n0\r\n\r\n",
	"fffffffffffffffff\r\nx\r\n0\r\n\r\n",
	"fffffffffffffff\r\nx",
	"5\r\nhel\rlo\r\n0\r\n\r\n",
	"0\r\nX: a\r\n b\r\n\r\n",
	"0\r\nX: a\x00\r\n\r\n",
	"5;a\x00\r\nhello\r\n0\r\n\r\n",
	"-1\r\n",
	" 5\r\nhello\r\n0\r\n\r\n",
}

// knownHeadErr reports whether err is one a head parser may return for
// input from a connection that only ends with io.EOF.
func knownHeadErr(err error) bool {
	for _, e := range []error{ErrLineTooLong, ErrMethodTooLong, ErrHeaderTooLong, ErrCookieTooLong,
		ErrMalformed, ErrUnsupportedExpect, ErrEmpty, io.ErrUnexpectedEOF} {
		if err == e {
			return true
		}
	}
	return false
}

// clip shortens an input for a failure message.
func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "...(" + strconv.Itoa(len(b)) + " bytes)"
	}
	return string(b)
}

func checkValue(t *testing.T, sent, what string, v []byte) {
	t.Helper()
	for _, c := range v {
		if c == 0 || c == '\r' || c == '\n' || c < ' ' && c != '\t' || c == 0x7f {
			t.Fatalf("sent %q: %s %q holds control byte %#x", sent, what, v, c)
		}
	}
	if len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		t.Fatalf("sent %q: %s %q not trimmed", sent, what, v)
	}
}

func serializeRequest(r *Request) []byte {
	var b []byte
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Target...)
	b = append(b, " HTTP/1."...)
	b = strconv.AppendInt(b, int64(r.Minor), 10)
	b = append(b, '\r', '\n')
	for _, f := range r.Fields {
		b = AppendField(b, f.Name, f.Value)
	}
	return append(b, '\r', '\n')
}

func FuzzParseRequest(f *testing.F) {
	for _, tc := range requestCases() {
		if len(tc.in) <= 4096 {
			f.Add([]byte(tc.in))
		}
	}
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sent := clip(in)
		lim := fuzzLimits()
		b := NewReader(bytes.NewReader(in), 0)
		var r Request
		err := b.ReadRequest(&r, &lim)
		if !knownHeadErr(err) && err != nil {
			t.Fatalf("sent %q: unexpected error %v", sent, err)
		}

		// The same bytes one at a time, from a tiny buffer: same outcome.
		b1 := NewReader(iotest.OneByteReader(bytes.NewReader(in)), 1)
		var r1 Request
		err1 := b1.ReadRequest(&r1, &lim)
		if err != err1 {
			t.Fatalf("sent %q: whole reads gave %s, one-byte reads %s", sent, sentinel(err), sentinel(err1))
		}
		if err != nil {
			return
		}
		got := summarizeRequest(&r)
		if got1 := summarizeRequest(&r1); !equalSummary(got, got1) {
			t.Fatalf("sent %q: whole reads gave %+v, one-byte reads %+v", sent, got, got1)
		}
		if !isToken(r.Method) || len(r.Method) > lim.Method {
			t.Fatalf("sent %q: method %q", sent, r.Method)
		}
		if r.Minor != 0 && r.Minor != 1 {
			t.Fatalf("sent %q: minor %d", sent, r.Minor)
		}
		if r.Minor == 1 && !r.HasHost {
			t.Fatalf("sent %q: HTTP/1.1 without Host accepted", sent)
		}
		if r.Chunked && r.ContentLength >= 0 {
			t.Fatalf("sent %q: chunked with Content-Length %d", sent, r.ContentLength)
		}
		if r.Chunked && r.Minor == 0 {
			t.Fatalf("sent %q: chunked HTTP/1.0 accepted", sent)
		}
		if r.Upgrade && r.Minor == 0 {
			t.Fatalf("sent %q: HTTP/1.0 upgrade", sent)
		}
		if len(r.Fields) > lim.FieldCount {
			t.Fatalf("sent %q: %d fields accepted", sent, len(r.Fields))
		}
		for _, f := range r.Fields {
			if !isToken(f.Name) || len(f.Name) > lim.FieldName {
				t.Fatalf("sent %q: field name %q", sent, f.Name)
			}
			checkValue(t, sent, "field value", f.Value)
			framing := EqualFold(f.Name, "content-length") || EqualFold(f.Name, "transfer-encoding") ||
				EqualFold(f.Name, "connection") || isHopName(f.Name)
			if framing && !f.Hop {
				t.Fatalf("sent %q: %q not marked Hop", sent, f.Name)
			}
			if EqualFold(f.Name, "host") && f.Hop {
				t.Fatalf("sent %q: Host marked Hop", sent)
			}
		}
		for _, c := range r.Target {
			if c <= ' ' || c == 0x7f {
				t.Fatalf("sent %q: target %q", sent, r.Target)
			}
		}
		if r.HeadLen <= 0 || r.HeadLen > len(in) {
			t.Fatalf("sent %q: HeadLen %d", sent, r.HeadLen)
		}

		// Re-serialised with CRLF and "Name: value", it parses the same.
		again := serializeRequest(&r)
		big := bigLimits()
		var r2 Request
		if err := NewReader(bytes.NewReader(again), 0).ReadRequest(&r2, &big); err != nil {
			t.Fatalf("sent %q, re-sent as %q: %v", sent, again, err)
		}
		if got2 := summarizeRequest(&r2); !equalSummary(got, got2) {
			t.Fatalf("sent %q: parsed %+v; re-sent as %q: parsed %+v", sent, got, again, got2)
		}

		// Last, as reading on may overwrite what r points to.
		rest, _ := io.ReadAll(b)
		rest1, _ := io.ReadAll(b1)
		if !bytes.Equal(rest, rest1) {
			t.Fatalf("sent %q: after the head whole reads left %q, one-byte reads %q", sent, clip(rest), clip(rest1))
		}
	})
}

// equalSummary compares two summaries of one kind.
func equalSummary[T reqSummary | respSummary](a, b T) bool { return reflect.DeepEqual(a, b) }

func serializeResponse(r *Response) []byte {
	var b []byte
	b = append(b, "HTTP/1."...)
	b = strconv.AppendInt(b, int64(r.Minor), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	b = append(b, r.Reason...)
	b = append(b, '\r', '\n')
	for _, f := range r.Fields {
		b = AppendField(b, f.Name, f.Value)
	}
	return append(b, '\r', '\n')
}

func FuzzParseResponse(f *testing.F) {
	for _, tc := range responseCases() {
		if len(tc.in) <= 4096 {
			f.Add([]byte(tc.in))
		}
	}
	for _, s := range responseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sent := clip(in)
		lim := fuzzLimits()
		b := NewReader(bytes.NewReader(in), 0)
		var r Response
		err := b.ReadResponse(&r, &lim)
		if !knownHeadErr(err) && err != nil || err == ErrMethodTooLong || err == ErrUnsupportedExpect {
			t.Fatalf("sent %q: unexpected error %v", sent, err)
		}
		b1 := NewReader(iotest.OneByteReader(bytes.NewReader(in)), 1)
		var r1 Response
		err1 := b1.ReadResponse(&r1, &lim)
		if err != err1 {
			t.Fatalf("sent %q: whole reads gave %s, one-byte reads %s", sent, sentinel(err), sentinel(err1))
		}
		// Timeouts every few bytes, each retried after ClearErr as the
		// router does while it waits for a dyno: same outcome.
		src := &stopReader{data: in, withData: len(in)%2 == 0, max: 3}
		for at := 1; at <= len(in); at += 5 {
			src.stops = append(src.stops, at)
		}
		b2 := NewReader(src, 4)
		var r2 Response
		err2 := b2.ReadResponse(&r2, &lim)
		for isTimeout(err2) {
			b2.ClearErr()
			err2 = b2.ReadResponse(&r2, &lim)
		}
		if err != err2 {
			t.Fatalf("sent %q: whole reads gave %s, reads with timeouts %s", sent, sentinel(err), sentinel(err2))
		}
		if err == nil && !equalSummary(summarizeResponse(&r), summarizeResponse(&r2)) {
			t.Fatalf("sent %q: whole reads gave %+v, reads with timeouts %+v", sent, summarizeResponse(&r), summarizeResponse(&r2))
		}
		if err != nil {
			return
		}
		got := summarizeResponse(&r)
		if got1 := summarizeResponse(&r1); !equalSummary(got, got1) {
			t.Fatalf("sent %q: whole reads gave %+v, one-byte reads %+v", sent, got, got1)
		}
		if r.Minor != 0 && r.Minor != 1 {
			t.Fatalf("sent %q: minor %d", sent, r.Minor)
		}
		if r.Status < 100 || r.Status > 999 {
			t.Fatalf("sent %q: status %d", sent, r.Status)
		}
		if r.Chunked && r.ContentLength != -1 {
			t.Fatalf("sent %q: chunked with Content-Length %d", sent, r.ContentLength)
		}
		if r.ContentLength < -1 {
			t.Fatalf("sent %q: Content-Length %d", sent, r.ContentLength)
		}
		for _, c := range r.Reason {
			if c < ' ' && c != '\t' || c == 0x7f {
				t.Fatalf("sent %q: reason %q", sent, r.Reason)
			}
		}
		if len(r.Fields) > lim.FieldCount {
			t.Fatalf("sent %q: %d fields accepted", sent, len(r.Fields))
		}
		for _, f := range r.Fields {
			if !isToken(f.Name) || len(f.Name) > lim.FieldName {
				t.Fatalf("sent %q: field name %q", sent, f.Name)
			}
			checkValue(t, sent, "field value", f.Value)
			if EqualFold(f.Name, "upgrade") && f.Hop == (r.Status == 101) {
				t.Fatalf("sent %q: Upgrade on %d has Hop %v", sent, r.Status, f.Hop)
			}
		}
		again := serializeResponse(&r)
		big := bigLimits()
		var r3 Response
		if err := NewReader(bytes.NewReader(again), 0).ReadResponse(&r3, &big); err != nil {
			t.Fatalf("sent %q, re-sent as %q: %v", sent, again, err)
		}
		if got2 := summarizeResponse(&r3); !equalSummary(got, got2) {
			t.Fatalf("sent %q: parsed %+v; re-sent as %q: parsed %+v", sent, got, again, got2)
		}
	})
}

func FuzzChunked(f *testing.F) {
	for _, s := range chunkSeeds {
		f.Add([]byte("payload"), []byte{1, 2, 3}, []byte(s))
	}
	f.Add([]byte(strings.Repeat("x", 5000)), []byte{255, 0, 17}, []byte("0\r\n\r\n"))
	f.Add([]byte{}, []byte{}, []byte(""))
	f.Fuzz(func(t *testing.T, data, splits, raw []byte) {
		// Round trip: data chunked at the sizes splits gives.
		sizes := make([]int, len(splits))
		for i, s := range splits {
			sizes[i] = int(s) + 1
		}
		ext, upper := len(splits)%2 == 1, len(splits)%3 == 1
		body := encodeChunked(data, sizes, ext, upper)
		for _, fd := range feeds {
			got, err := decodeAll(NewReader(fd.wrap(body), fd.size))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("encoded %q as %q; over %s decoded %q, %v", clip(data), clip(body), fd.name, got, err)
			}
		}

		// Arbitrary bytes: a body, ErrBadChunk or io.ErrUnexpectedEOF,
		// the same over every feed.
		var first []byte
		var firstErr error
		for i, fd := range feeds {
			got, err := decodeAll(NewReader(fd.wrap(raw), 1))
			if err != nil && err != ErrBadChunk && err != io.ErrUnexpectedEOF {
				t.Fatalf("sent %q over %s: unexpected error %v", clip(raw), fd.name, err)
			}
			if i == 0 {
				first, firstErr = got, err
				continue
			}
			if err != firstErr || !bytes.Equal(got, first) {
				t.Fatalf("sent %q: %s decoded %q, %v; %s decoded %q, %v", clip(raw), feeds[0].name, first, firstErr, fd.name, got, err)
			}
		}
		src := &stopReader{data: raw, withData: len(raw)%2 == 1, max: 4}
		for at := 0; at <= len(raw); at += 3 {
			src.stops = append(src.stops, at)
		}
		b := NewReader(src, 8)
		var c ChunkedReader
		c.Reset(b)
		got, err := readAllRetry(&c, b)
		if err != firstErr || !bytes.Equal(got, first) {
			t.Fatalf("sent %q: %s decoded %q, %v; with timeouts %q, %v", clip(raw), feeds[0].name, first, firstErr, got, err)
		}
	})
}
