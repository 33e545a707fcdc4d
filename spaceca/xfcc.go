package spaceca

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
)

// AppendXFCC appends to dst the X-Forwarded-Client-Cert value of a verified
// client certificate (SPEC.md section 11.1), one element in Envoy's format
// and key order (envoyproxy/envoy docs/root/configuration/http/
// http_conn_man/headers.rst, "x-forwarded-client-cert"):
//
//	Hash=<hex SHA-256 of the leaf DER>;Subject="<subject>";URI=<first URI SAN>;DNS=<DNS SAN>;DNS=...
//
// Envoy's rules: keys are case-insensitive, a value holding ',', ';' or
// '=' is double-quoted, a '"' in a value becomes '\"', Subject is always
// quoted, and URI is there (empty) even without a URI SAN. So that every
// XFCC parser reads the same values back, and the header carries only
// printable ASCII, the values are made so that none ever holds '"' or a
// '\' before a '"' or at its end:
//
//   - Subject is the RFC 4514 string of the subject (crypto/x509/pkix's,
//     most specific attribute first) with '"' and '\' written as the
//     escapes \22 and \5C, and control and non-ASCII bytes as \XX (RFC 4514
//     section 2.4 lets any character be written so; OpenSSL's RFC 2253
//     output, which Envoy forwards, escapes non-ASCII bytes the same way);
//   - URI has every byte RFC 3986 does not allow in a URI percent-encoded
//     (Go's parser lets '"', '\' or non-ASCII through in a query);
//   - a DNS SAN that is not a host name (letters, digits, '.', '-', '_',
//     '*') is left out: a dNSName must be one (RFC 5280 section 4.2.1.6).
//
// The router calls it once per connection and keeps the bytes.
func AppendXFCC(dst []byte, leaf *x509.Certificate) []byte {
	sum := sha256.Sum256(leaf.Raw)
	dst = append(dst, "Hash="...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, `;Subject="`...)
	dst = appendSubject(dst, leaf.Subject.String())
	dst = append(dst, `";URI=`...)
	if len(leaf.URIs) > 0 {
		dst = appendURI(dst, leaf.URIs[0].String())
	}
	for _, name := range leaf.DNSNames {
		if hostName(name) {
			dst = append(dst, ";DNS="...)
			dst = append(dst, name...)
		}
	}
	return dst
}

const upperHex = "0123456789ABCDEF"

// appendSubject appends s, an RFC 4514 string from pkix, with '"', '\',
// control and non-ASCII bytes written as \XX. pkix escapes with a '\'
// before the character (',', '+', '"', '\', '<', '>', ';', a leading '#'
// or space, a trailing space); a '\' is only ever such an escape.
func appendSubject(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '\\' && i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == '"'):
			i++
			dst = append(dst, '\\', upperHex[s[i]>>4], upperHex[s[i]&0xf])
		case b == '\\' && i+1 < len(s) && s[i+1] >= 0x20 && s[i+1] < 0x7f:
			i++
			dst = append(dst, '\\', s[i])
		case b < 0x20 || b >= 0x7f || b == '"' || b == '\\':
			dst = append(dst, '\\', upperHex[b>>4], upperHex[b&0xf])
		default:
			dst = append(dst, b)
		}
	}
	return dst
}

// appendURI appends u with the bytes RFC 3986 does not allow
// percent-encoded, quoted when it holds ',', ';' or '='.
func appendURI(dst []byte, u string) []byte {
	quote := strings.ContainsAny(u, ",;=")
	if quote {
		dst = append(dst, '"')
	}
	for i := 0; i < len(u); i++ {
		if b := u[i]; uriByte(b) {
			dst = append(dst, b)
		} else {
			dst = append(dst, '%', upperHex[b>>4], upperHex[b&0xf])
		}
	}
	if quote {
		dst = append(dst, '"')
	}
	return dst
}

// uriByte reports whether b may appear in a URI as it is: unreserved,
// reserved or '%' (RFC 3986 section 2).
func uriByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		strings.IndexByte("-._~:/?#[]@!$&'()*+,;=%", b) >= 0
}

// hostName reports whether name has only the characters of a host name or
// wildcard; it then needs no quoting.
func hostName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte(".-_*", b) >= 0) {
			return false
		}
	}
	return true
}
