// Package h2 is spacerouter's own HTTP/2 server connection (RFC 9113): the
// connection state machine on golang.org/x/net/http2's Framer and
// golang.org/x/net/http2/hpack, without http2.Server or net/http handlers.
//
// A Conn owns one client connection after TLS (or h2c prior knowledge):
// the preface, SETTINGS, PING, flow control both ways, stream states, GOAWAY
// on drain and on errors, and the abuse limits production HTTP/2 servers
// have (rapid reset, CONTINUATION, SETTINGS, PING, empty-frame and PRIORITY
// floods, concurrent streams, a window that never opens). Each request
// stream is handed to a Handler as a Stream: the decoded request head as an
// h1.Request (limits and the malformed-request rules of RFC 9113 section
// 8.2 and SPEC.md sections 2 and 4 applied as for HTTP/1, reported through
// HeadErr), the request body (Read), and the response (Interim, Send,
// Reset).
//
// One reader goroutine (the one running Serve) reads and processes frames;
// handlers run one goroutine per stream; one writer goroutine writes the
// frames every stream and the reader queued, a batch per conn.Write.
//
// The package is wire code like router/h1: it knows nothing of apps,
// dynos, routing or router lines. The caller owns what a request means.
package h2
