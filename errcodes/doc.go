// Package errcodes holds the table of Heroku-style router error codes (H10,
// H12, …): for each, the code, the level it is logged at, the exact desc and
// cause strings, the default response status and the sock= prefix.
//
// It owns the data only. It does not log, build responses or decide when an
// error happens; the router does that and names a Code. It imports only the
// standard library.
package errcodes
