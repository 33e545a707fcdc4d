package h2

import "github.com/spacerouter/spacerouter/router/h1"

// knownOf classifies a lower-case field name as router/h1 does for HTTP/1
// (h1.Known). HTTP/2 names are lower case on the wire (RFC 9113 section
// 8.2.1; an upper-case name is malformed anyway), so a switch on the
// string does it without folding.
func knownOf(name string) h1.Known {
	switch name {
	case "host":
		return h1.KnownHost
	case "content-length":
		return h1.KnownContentLength
	case "transfer-encoding":
		return h1.KnownTransferEncoding
	case "connection":
		return h1.KnownConnection
	case "expect":
		return h1.KnownExpect
	case "upgrade":
		return h1.KnownUpgrade
	case "te":
		return h1.KnownTE
	case "trailer":
		return h1.KnownTrailer
	case "keep-alive":
		return h1.KnownKeepAlive
	case "proxy-connection":
		return h1.KnownProxyConnection
	case "cookie":
		return h1.KnownCookie
	case "set-cookie":
		return h1.KnownSetCookie
	case "content-type":
		return h1.KnownContentType
	case "via":
		return h1.KnownVia
	case "x-request-id":
		return h1.KnownXRequestID
	case "x-forwarded-for":
		return h1.KnownXForwardedFor
	case "x-forwarded-proto":
		return h1.KnownXForwardedProto
	case "x-forwarded-port":
		return h1.KnownXForwardedPort
	case "x-request-start":
		return h1.KnownXRequestStart
	}
	return h1.KnownOther
}

// tchar marks the bytes of an RFC 9110 token; lowerTchar the same without
// upper-case letters (RFC 9113 section 8.2.1 field names).
var tchar, lowerTchar = makeTchar()

func makeTchar() (t, l [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c], l[c] = true, true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], l[c] = true, true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c], l[c] = true, true
	}
	return t, l
}

// isToken reports whether v is a non-empty token (a :method).
func isToken(v string) bool {
	if len(v) == 0 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !tchar[v[i]] {
			return false
		}
	}
	return true
}

// validName reports whether a regular field name is a lower-case token
// (RFC 9113 section 8.2.1: no upper case, no separators or controls).
func validName(v string) bool {
	for i := 0; i < len(v); i++ {
		if !lowerTchar[v[i]] {
			return false
		}
	}
	return len(v) > 0
}

// validValue reports whether a field value is acceptable: no leading or
// trailing SP or HTAB, no NUL, CR or LF (RFC 9113 section 8.2.1), and, as
// for HTTP/1 (router/h1), no other control byte but HTAB and no DEL: the
// value is forwarded to a dyno in an HTTP/1 head.
func validValue(v string) bool {
	if n := len(v); n > 0 && (v[0] == ' ' || v[0] == '\t' || v[n-1] == ' ' || v[n-1] == '\t') {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validTarget reports whether :path is an origin-form target or "*"
// (RFC 9113 section 8.3.1), without white space or control bytes.
func validTarget(v string) bool {
	if len(v) == 0 || v[0] != '/' && v != "*" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validScheme reports whether :scheme is an RFC 3986 scheme.
func validScheme(v string) bool {
	if len(v) == 0 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i] | 0x20
		switch {
		case 'a' <= c && c <= 'z':
		case i > 0 && ('0' <= v[i] && v[i] <= '9' || v[i] == '+' || v[i] == '-' || v[i] == '.'):
		default:
			return false
		}
	}
	return true
}

// hostByte marks the bytes of a uri-host [":" port] (a reg-name, an IP
// literal, a port), as router/h1 accepts in Host. No "@": RFC 9113
// section 8.3.1 forbids userinfo in :authority.
var hostByte = makeHostBytes()

func makeHostBytes() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-._~!$&'()*+,;=:[]%" {
		t[c] = true
	}
	return t
}

func validHost(v string) bool {
	if len(v) == 0 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !hostByte[v[i]] {
			return false
		}
	}
	return true
}

// equalFold reports whether v equals the lower-case ASCII word, ignoring
// the case of v.
func equalFold(v, word string) bool {
	if len(v) != len(word) {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes compares two byte strings, ignoring ASCII case.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
