package logging

import (
	"bytes"
	"strconv"
	"time"
)

// redacted is the value router lines write for a redacted query parameter.
const redacted = "REDACTED"

// hexDigits are the digits of \u00NN escapes, lower case as JSON encoders
// write them.
const hexDigits = "0123456789abcdef"

// AppendLine appends the router line of l (SPEC.md section 7), ending in
// "\n", to dst and returns the extended slice. source is the token written
// after the time ("heroku[router]"). The values of query parameters of
// l.Path whose key is in redact are written as REDACTED; l itself is not
// changed.
//
// The prefix time is l.Time as written, even when zero; RouterLog.Write
// substitutes the current time for a zero Time. A Code that has no errcodes
// entry is written like errcodes.None. AppendLine does not allocate when dst
// has room for the line.
func AppendLine(dst []byte, l *Line, source string, redact []string) []byte {
	return appendLine(dst, l, l.Time, source, redact)
}

// appendLine is AppendLine with the prefix time given separately, so that
// RouterLog.Write can use the current time without writing to l.
func appendLine(b []byte, l *Line, t time.Time, source string, redact []string) []byte {
	b = appendTime(b, t)
	b = append(b, ' ')
	b = append(b, source...)
	b = append(b, ": "...)

	ent := l.Code.Entry()
	if ent.H == "" {
		b = append(b, "at=info"...)
	} else {
		if ent.Sock != "" {
			b = append(b, "sock="...)
			b = appendBare(b, ent.Sock)
			b = append(b, ' ')
		}
		b = append(b, "at="...)
		b = appendBare(b, ent.Level)
		b = append(b, " code="...)
		b = appendBare(b, ent.H)
		b = append(b, " desc="...)
		b = appendQuoted(b, ent.Desc)
		if ent.Cause != "" {
			b = append(b, " cause="...)
			b = appendQuoted(b, ent.Cause)
		}
	}

	b = append(b, " method="...)
	b = appendBare(b, l.Method)
	b = append(b, " path=\""...)
	b = appendPath(b, l.Path, redact)
	b = append(b, "\" host="...)
	b = appendBare(b, l.Host)
	b = append(b, " request_id="...)
	b = appendBare(b, l.RequestID)
	b = append(b, " fwd="...)
	b = appendQuoted(b, l.Fwd)
	b = append(b, " dyno="...)
	b = appendBare(b, l.Dyno)
	b = append(b, " connect="...)
	b = appendMillis(b, l.Connect)
	b = append(b, " service="...)
	b = appendMillis(b, l.Service)
	b = append(b, " status="...)
	if l.Status > 0 {
		b = strconv.AppendInt(b, int64(l.Status), 10)
	}
	b = append(b, " bytes="...)
	if l.Bytes >= 0 {
		b = strconv.AppendInt(b, l.Bytes, 10)
	}
	b = append(b, " protocol="...)
	b = append(b, l.Protocol.String()...)
	if l.TLS {
		b = append(b, " tls=true tls_version="...)
		b = append(b, TLSVersionName(l.TLSVersion)...)
	} else {
		b = append(b, " tls=false"...)
	}
	return append(b, '\n')
}

// appendTime appends t in UTC as RFC 3339 with exactly six fractional
// digits (truncated) and a "+00:00" offset, as the router line prefix is
// written: 2026-11-23T12:00:00.123456+00:00.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		// Not a four-digit year: let the time package write it.
		return t.AppendFormat(b, "2006-01-02T15:04:05.000000-07:00")
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, "+00:00"...)
}

// appendDigits appends the non-negative v zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var buf [8]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}

// appendMillis appends d in whole milliseconds (truncated) with "ms", or
// nothing when d is negative (the phase never ran).
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 {
		return b
	}
	b = strconv.AppendInt(b, int64(d/time.Millisecond), 10)
	return append(b, "ms"...)
}

// appendQuoted appends s between double quotes, escaped by appendEscaped.
func appendQuoted[S ~string | ~[]byte](b []byte, s S) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

// appendEscaped appends s for the inside of a quoted value: '"' and '\' get
// a backslash, control bytes (below 0x20, and 0x7f) become \u00NN, so the
// value stays on one line and logfmt decoders read back its exact bytes.
// Bytes from 0x80 up pass through unchanged.
func appendEscaped[S ~string | ~[]byte](b []byte, s S) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != 0x7f && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		if c == '"' || c == '\\' {
			b = append(b, '\\', c)
		} else {
			b = appendUnicodeEscape(b, c)
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendBare appends an unquoted value. Method, host, request ID and dyno
// come validated from the parser and the config, but a request ID may hold
// '=' (base64 padding) and nothing should split a line: a value with a
// space, '"', '=', a control byte or 0x7f is written quoted instead, so
// logfmt decoders read back its exact bytes.
func appendBare[S ~string | ~[]byte](b []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '"' || c == '=' {
			return appendQuoted(b, s)
		}
	}
	return append(b, s...)
}

// appendUnicodeEscape appends c as \u00NN.
func appendUnicodeEscape(b []byte, c byte) []byte {
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// appendPath appends the escaped path (without its quotes), writing the
// value of every query parameter whose key is in redact as REDACTED. The
// query is everything after the first '?', split on '&'; a parameter with
// no '=' is written as it is.
func appendPath(b []byte, path []byte, redact []string) []byte {
	q := bytes.IndexByte(path, '?')
	if q < 0 || len(redact) == 0 {
		return appendEscaped(b, path)
	}
	b = appendEscaped(b, path[:q+1])
	rest := path[q+1:]
	for {
		param, more := rest, false
		if i := bytes.IndexByte(rest, '&'); i >= 0 {
			param, rest, more = rest[:i], rest[i+1:], true
		}
		if eq := bytes.IndexByte(param, '='); eq >= 0 && isRedacted(param[:eq], redact) {
			b = appendEscaped(b, param[:eq+1])
			b = append(b, redacted...)
		} else {
			b = appendEscaped(b, param)
		}
		if !more {
			return b
		}
		b = append(b, '&')
	}
}

// isRedacted reports whether the query key k, raw or percent-decoded, is
// one of names. Comparison is exact (case-sensitive).
func isRedacted(k []byte, names []string) bool {
	encoded := bytes.IndexByte(k, '%') >= 0 || bytes.IndexByte(k, '+') >= 0
	for _, name := range names {
		if string(k) == name || encoded && decodedEqual(k, name) {
			return true
		}
	}
	return false
}

// decodedEqual reports whether raw, decoded as a query key the way
// url.QueryUnescape does ("%XX" is a byte, '+' a space), equals name. A '%'
// not followed by two hex digits stands for itself. It does not allocate.
func decodedEqual(raw []byte, name string) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]):
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		case c == '+':
			c = ' '
		}
		if j >= len(name) || name[j] != c {
			return false
		}
		j++
	}
	return j == len(name)
}

// isHex reports whether c is a hexadecimal digit.
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex returns the value of the hexadecimal digit c.
func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
