// Package demo is the built-in demo space that `spacerouter` runs when it is
// started without -config (SPEC.md section 1): two in-process demo dynos,
// web.1 and web.2, and the YAML of a space that routes localhost and
// demo.localhost to them.
//
// The dynos are ordinary net/http servers on loopback; they are backends,
// not part of the router, and exist so a person can see the router work:
// which dyno answered (/), the headers the router added (/headers), a
// streamed response (/stream) and a slow one (/slow?ms=N).
//
// The package owns the dynos and the demo YAML only. It does not parse the
// YAML, start the router or handle signals; cmd/spacerouter does. It imports
// only the standard library.
package demo
