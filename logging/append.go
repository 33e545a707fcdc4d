package logging

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// redacted is the value router lines write for a redacted query parameter.
const redacted = "REDACTED"

// hexDigits are the digits of \u00NN escapes, lower case as JSON encoders
// write them.
const hexDigits = "0123456789abcdef"

// upperHex are the digits of the %XX a path byte that is not UTF-8 is
// written as, upper case as RFC 3986 section 2.1 recommends.
const upperHex = "0123456789ABCDEF"

// replacementEscape is what a byte that is not UTF-8 is written as inside
// a quoted value other than path (SPEC.md section 7): the JSON escape of
// U+FFFD, which logfmt decoders (kr/logfmt, go-logfmt) read as that rune.
const replacementEscape = `\ufffd`

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

	connect, service := l.Connect, l.Service
	if ent.H == "" {
		// SPEC.md section 7: a line without code= always carries numbers
		// in connect and service (0ms where the router answered by
		// itself, as for an unknown host's 404), whatever the caller set:
		// heroku/lumbermill parses them as integers and drops the line
		// when one is empty.
		connect, service = max(connect, 0), max(service, 0)
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
	b = appendMillis(b, connect)
	b = append(b, " service="...)
	b = appendMillis(b, service)
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
	if len(l.ClientCert) > 0 {
		b = append(b, " client_cert="...)
		b = appendBare(b, l.ClientCert)
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

// appendQuoted appends s between double quotes, escaped by appendEscaped
// with bytes that are not UTF-8 written as \ufffd.
func appendQuoted[S ~string | ~[]byte](b []byte, s S) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s, false)
	return append(b, '"')
}

// appendEscaped appends s for the inside of a quoted value: '"' and '\' get
// a backslash, control bytes (below 0x20, and 0x7f) become \u00NN, so the
// value stays on one line and logfmt decoders read back its exact bytes.
// UTF-8 sequences pass through unchanged. Each byte that is not part of a
// valid UTF-8 sequence (as utf8.DecodeRune sees it) is written as %XX when
// percent is set (the path, so the original byte stays readable and a
// decoder can restore it) and as \ufffd otherwise, so the line is valid
// UTF-8 (SPEC.md section 7).
func appendEscaped[S ~string | ~[]byte](b []byte, s S, percent bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainInQuotes[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			// The common 2-byte sequences inline; the rest, and what is
			// not UTF-8, through validUTF8Len.
			if c >= 0xc2 && c < 0xe0 && i+1 < len(s) && s[i+1]&0xc0 == 0x80 {
				i += 2
				continue
			}
			if n := validUTF8Len(s[i:]); n > 0 {
				i += n
				continue
			}
			b = append(b, s[start:i]...)
			if percent {
				b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
			} else {
				b = append(b, replacementEscape...)
			}
		} else {
			b = append(b, s[start:i]...)
			if c == '"' || c == '\\' {
				b = append(b, '\\', c)
			} else {
				b = appendUnicodeEscape(b, c)
			}
		}
		i++
		start = i
	}
	return append(b, s[start:]...)
}

// plainInQuotes is a lookup table of the bytes appendEscaped copies as
// they are without looking further: printable ASCII but '"' and '\'.
var plainInQuotes = func() (t [256]bool) {
	for c := ' '; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// validUTF8Len returns the length of the valid UTF-8 sequence s starts
// with, or 0 when its first byte does not start one. It accepts exactly
// what utf8.DecodeRune accepts (no overlong forms, no surrogates, nothing
// above U+10FFFF), for both strings and byte slices without converting
// either. s[0] is at least utf8.RuneSelf.
func validUTF8Len[S ~string | ~[]byte](s S) int {
	c := s[0]
	n, lo, hi := 0, byte(0x80), byte(0xbf)
	switch {
	case c < 0xc2: // a continuation byte, or an overlong 2-byte form
		return 0
	case c < 0xe0:
		n = 2
	case c < 0xf0:
		n = 3
		if c == 0xe0 {
			lo = 0xa0 // overlong
		} else if c == 0xed {
			hi = 0x9f // surrogates
		}
	case c < 0xf5:
		n = 4
		if c == 0xf0 {
			lo = 0x90 // overlong
		} else if c == 0xf4 {
			hi = 0x8f // above U+10FFFF
		}
	default:
		return 0
	}
	if len(s) < n || s[1] < lo || s[1] > hi {
		return 0
	}
	for i := 2; i < n; i++ {
		if s[i] < 0x80 || s[i] > 0xbf {
			return 0
		}
	}
	return n
}

// appendBare appends an unquoted value. Method, host, request ID and dyno
// come validated from the parser and the config, but a request ID may hold
// '=' (base64 padding) and nothing should split a line: a value with a
// space, '"', '=', a control byte, 0x7f or a byte that is not UTF-8 is
// written quoted instead (where a byte that is not UTF-8 becomes \ufffd),
// so logfmt decoders read back its exact bytes, or U+FFFD for bytes that
// were not text. Valid UTF-8 stays bare: logfmt decoders take any byte
// above ' ' as part of a bare value.
func appendBare[S ~string | ~[]byte](b []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			n := validUTF8Len(s[i:])
			if n == 0 {
				return appendQuoted(b, s)
			}
			i += n - 1
			continue
		}
		if c <= ' ' || c == 0x7f || c == '"' || c == '=' {
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
// no '=' is written as it is. Bytes that are not UTF-8 are written as %XX.
// Splitting on the ASCII bytes '?', '&' and '=' never cuts a UTF-8
// sequence, so escaping piece by piece equals escaping the whole path.
func appendPath(b []byte, path []byte, redact []string) []byte {
	q := bytes.IndexByte(path, '?')
	if q < 0 || len(redact) == 0 {
		return appendEscaped(b, path, true)
	}
	b = appendEscaped(b, path[:q+1], true)
	rest := path[q+1:]
	for {
		param, more := rest, false
		if i := bytes.IndexByte(rest, '&'); i >= 0 {
			param, rest, more = rest[:i], rest[i+1:], true
		}
		if eq := bytes.IndexByte(param, '='); eq >= 0 && isRedacted(param[:eq], redact) {
			b = appendEscaped(b, param[:eq+1], true)
			b = append(b, redacted...)
		} else {
			b = appendEscaped(b, param, true)
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
