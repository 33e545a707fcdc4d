// Package h1 is spacerouter's own HTTP/1.x wire code: a buffered reader
// over a connection, a strict request-head parser, a response-head parser,
// the chunked body decoder, and helpers to write heads and chunks.
//
// It owns the byte-level rules of SPEC.md section 4.2 and 4b (limits,
// framing, obs-fold, NUL, bare CR, duplicate Content-Length, Expect) and
// reports each violation as one of its sentinel errors, so the router can
// map it to an H code. It does not route, log, or set deadlines: the
// caller owns the connection. Parsed slices point into the Reader's buffer
// and stay valid until the next read from that Reader.
//
// Nothing here uses net/http's parser: net/http decides too much silently
// (see shared/research/edge-hardening.md section C).
package h1
