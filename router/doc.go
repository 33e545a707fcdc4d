// Package router is spacerouter's request path: the listeners, the app
// table, admission, dyno choice, the dyno connection pools, forwarding,
// relaying and buffering the response, and one router line per request.
//
// The HTTP/1 wire format on both sides is package router/h1. Config comes
// validated from package config; the router does not read files other than
// certificates and error pages named there. It does not parse flags or
// handle signals; cmd/spacerouter does.
package router
