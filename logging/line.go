package logging

import (
	"crypto/tls"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
)

// Protocol is the protocol= value of a router line.
type Protocol uint8

// Protocols.
const (
	HTTP10 Protocol = iota // http1.0
	HTTP11                 // http1.1
	HTTP20                 // http2.0
)

// String returns the protocol= value: "http1.0", "http1.1", "http2.0", or
// "unknown" for a value outside the constants.
func (p Protocol) String() string {
	switch p {
	case HTTP10:
		return "http1.0"
	case HTTP11:
		return "http1.1"
	case HTTP20:
		return "http2.0"
	}
	return "unknown"
}

// TLSVersionName returns the tls_version= value of a crypto/tls version
// constant ("tls1.3"), or "unknown".
func TLSVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "tls1.0"
	case tls.VersionTLS11:
		return "tls1.1"
	case tls.VersionTLS12:
		return "tls1.2"
	case tls.VersionTLS13:
		return "tls1.3"
	}
	return "unknown"
}

// Line is the data of one router line (SPEC.md section 7). The router fills
// one per request in a reused struct; byte-slice fields may point into
// connection buffers and are only read during Write.
type Line struct {
	// Time is when the line is written (the prefix timestamp).
	Time time.Time
	// Code is the router error, or errcodes.None for at=info without code.
	Code errcodes.Code
	// Method is the request method; Path the raw request target with its
	// query string; Host the normalized host; RequestID the X-Request-Id
	// sent to the dyno; Fwd the X-Forwarded-For sent to the dyno. Bytes
	// that are not UTF-8 are written as %XX in Path and as U+FFFD (the
	// escape \ufffd, the value then quoted) elsewhere, Dyno included.
	Method    []byte
	Path      []byte
	Host      []byte
	RequestID []byte
	Fwd       []byte
	// Dyno is the dyno name, "" when no dyno was chosen.
	Dyno string
	// Connect and Service are written in whole milliseconds; a negative
	// value writes the field empty on a line with a Code, and 0ms on a
	// line without one (SPEC.md section 7: such lines always carry
	// numbers there, as heroku/lumbermill parses them as integers).
	Connect time.Duration
	Service time.Duration
	// Status is the status; 0 writes status= empty.
	Status int
	// Bytes is the response body bytes; negative writes bytes= empty.
	Bytes int64
	// Protocol of the client side; TLS and TLSVersion (crypto/tls
	// VersionTLS11..13) of the client connection.
	Protocol   Protocol
	TLS        bool
	TLSVersion uint16
	// ClientCert is the client_cert= value (the first 16 hex digits of the
	// SHA-256 of a verified client certificate, SPEC.md 11.1), written
	// after the last field when not empty.
	ClientCert []byte
	// Recent, when not nil, also keeps the written line (the app's recent
	// lines for the admin API).
	Recent *Recent
}

// Reset clears l for reuse, leaving the empty-field markers set
// (Connect, Service and Bytes negative).
func (l *Line) Reset() {
	*l = Line{Connect: -1, Service: -1, Bytes: -1}
}
