// Package h2 is spacerouter's own HTTP/2 server connection (RFC 9113): the
// connection state machine on golang.org/x/net/http2's Framer and
// golang.org/x/net/http2/hpack, without http2.Server or net/http handlers.
//
// A Conn owns one client connection after TLS (or h2c prior knowledge):
// the preface, SETTINGS, PING, flow control both ways, stream states, GOAWAY
// on drain and on errors, and the abuse limits production HTTP/2 servers
// have. Each request stream is handed to a Handler as a Stream: the decoded
// request head as an h1.Request (limits and the malformed-request rules of
// RFC 9113 sections 8.2 and 8.3 and SPEC.md sections 2 and 4 applied as
// for HTTP/1, reported through HeadErr), the request body (Read), and the
// response (Interim, Send, Reset).
//
// The package is wire code like router/h1: it knows nothing of apps,
// dynos, routing or router lines. The caller owns what a request means.
//
// # Goroutines
//
// One reader goroutine, the one running Serve, reads and processes frames.
// Handlers run one goroutine per stream; they start when every complete
// frame already read was processed, so a HEADERS frame reset by a
// RST_STREAM in the same read never reaches a handler (CVE-2023-44487).
// One writer goroutine writes what streams and the reader queued: whole
// encoded frames appended under the connection's lock (HPACK encoding
// included, in write order), a batch per conn.Write, after yielding once
// so streams ready in the same scheduling round join the batch. It starts
// on demand and exits when the connection is idle.
//
// # Memory
//
// An idle connection holds no stream, no body or read or write buffer and
// no writer goroutine: the read buffer goes back to its pool whenever the
// reader blocks, write buffers when the writer exits. Response heads are
// encoded without an HPACK dynamic table (as HAProxy and nginx do), so the
// encoder retains nothing and fields are encoded from the caller's bytes
// without copies; the decoder keeps the 4096-byte table RFC 7541 gives the
// client.
//
// # Limits
//
// Header blocks are decoded as their frames arrive; each field is checked
// against Config.Limits as it is emitted, and a block is cut at a hard cap
// (CONTINUATION floods, CVE-2024-27316) well above the limits, so a block
// within the cap but over a limit is only a stream-level refusal and the
// HPACK state stays whole. Resets of running streams, malformed requests,
// PING, SETTINGS, empty DATA and CONTINUATION frames and PRIORITY frames
// each spend a budget that decays with time and is refunded by completed
// requests; an exhausted budget ends the connection with
// GOAWAY(ENHANCE_YOUR_CALM).
package h2
