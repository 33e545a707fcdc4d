package h1

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing/iotest"
)

// testLimits are the limits the table tests run with unless a case changes
// them: small enough that each limit is easy to pass.
func testLimits() Limits {
	return Limits{
		StartLine:   100,
		Method:      10,
		FieldName:   24,
		Field:       80,
		Cookie:      160,
		HeadersSize: 1000,
		FieldCount:  16,
	}
}

// bigLimits are roomy limits, for re-parsing a re-serialised head.
func bigLimits() Limits {
	return Limits{
		StartLine:   1 << 20,
		Method:      1 << 20,
		FieldName:   1 << 20,
		Field:       1 << 20,
		Cookie:      1 << 20,
		HeadersSize: 1 << 22,
		FieldCount:  1 << 16,
	}
}

// feed is one way of handing wire bytes to a Reader.
type feed struct {
	name string
	size int // the Reader's initial buffer size
	wrap func(b []byte) io.Reader
}

// feeds covers whole reads, one byte per read (partial lines and buffer
// growth from a tiny buffer), and data returned together with io.EOF.
var feeds = []feed{
	{"whole", DefaultReaderSize, func(b []byte) io.Reader { return bytes.NewReader(b) }},
	{"one_byte", 16, func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"half_data_err", 64, func(b []byte) io.Reader { return iotest.HalfReader(iotest.DataErrReader(bytes.NewReader(b))) }},
}

// stopReader hands out data, failing once with os.ErrDeadlineExceeded (a
// net.Error whose Timeout() is true) when it reaches each offset in stops.
// withData makes the failing read also return the bytes up to the stop.
type stopReader struct {
	data     []byte
	pos      int
	stops    []int // ascending
	withData bool
	max      int // bytes per read; 0: no bound
}

func (s *stopReader) Read(p []byte) (int, error) {
	if len(s.stops) > 0 && s.stops[0] <= s.pos {
		s.stops = s.stops[1:]
		return 0, os.ErrDeadlineExceeded
	}
	if s.pos == len(s.data) {
		return 0, io.EOF
	}
	end := len(s.data)
	if len(s.stops) > 0 {
		end = s.stops[0]
	}
	if s.max > 0 && end-s.pos > s.max {
		end = s.pos + s.max
	}
	n := copy(p, s.data[s.pos:end])
	s.pos += n
	if s.withData && len(s.stops) > 0 && s.stops[0] == s.pos {
		s.stops = s.stops[1:]
		return n, os.ErrDeadlineExceeded
	}
	return n, nil
}

// isTimeout reports whether err is a timeout the caller may retry after
// ClearErr.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// sentinel names the package error err is, for messages and for
// comparing outcomes across feeds.
func sentinel(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{
		{ErrLineTooLong, "ErrLineTooLong"},
		{ErrMethodTooLong, "ErrMethodTooLong"},
		{ErrHeaderTooLong, "ErrHeaderTooLong"},
		{ErrCookieTooLong, "ErrCookieTooLong"},
		{ErrMalformed, "ErrMalformed"},
		{ErrUnsupportedExpect, "ErrUnsupportedExpect"},
		{ErrBadChunk, "ErrBadChunk"},
		{ErrEmpty, "ErrEmpty"},
		{io.ErrUnexpectedEOF, "io.ErrUnexpectedEOF"},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	if err == nil {
		return "nil"
	}
	return "other: " + err.Error()
}

// readAllRetry reads rd to io.EOF, calling b.ClearErr and going on after
// each timeout, as the router does; it gives up after a million timeouts.
func readAllRetry(rd io.Reader, b *Reader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 7)
	for timeouts := 0; ; {
		n, err := rd.Read(buf)
		out = append(out, buf[:n]...)
		switch {
		case err == io.EOF:
			return out, nil
		case isTimeout(err) && timeouts < 1e6:
			timeouts++
			b.ClearErr()
		case err != nil:
			return out, err
		}
	}
}
