// Package bench is the load driver behind spacebench (SPEC.md section 10).
//
// It owns the client side of a benchmark: an HDR-style latency histogram
// ([Hist]), a load driver that speaks HTTP/1.1 over its own keep-alive
// connections and HTTP/2 through golang.org/x/net/http2 ([Run]), in a closed
// loop or at a fixed rate with latency measured from the intended send time,
// and an interleaved A/B comparison of two targets ([Compare]).
//
// It does not own the router: it talks to a running router (or any HTTP
// server) over the network and never reaches into router internals. Flag
// parsing and printing belong to cmd/spacebench.
package bench
