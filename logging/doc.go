// Package logging owns the two logs of the router.
//
// The router line (SPEC.md section 7) is the product's per-request output:
// AppendLine renders a Line in the exact, fixed-order shape log pipelines
// parse, and RouterLog writes those lines to stdout, stderr or a file, one
// whole line per Write call, without allocating on the request path.
//
// The operational log (start, reload, warnings, handshake failures) is a zap
// logger built by New, writing JSON to stderr; the Key constants are the
// field names every package uses in it.
//
// Package logging does not decide error codes: the router classifies each
// failure with an errcodes.Code and this package only writes the code's
// level, desc, cause and sock from the errcodes table.
package logging
