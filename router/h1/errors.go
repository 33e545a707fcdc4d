package h1

import "errors"

// Errors the parsers return. Each maps to one router outcome; the router
// compares with errors.Is.
var (
	// ErrLineTooLong: the request line or response status line is over the
	// limit (414 or 502, H25 oversized status line).
	ErrLineTooLong = errors.New("h1: start line too long")
	// ErrMethodTooLong: the method is over the limit (400, H25).
	ErrMethodTooLong = errors.New("h1: method too long")
	// ErrHeaderTooLong: one field, a field name, the field count or the
	// head total is over its limit (400 or 502, H25 oversized header).
	ErrHeaderTooLong = errors.New("h1: header too large")
	// ErrCookieTooLong: one Cookie or Set-Cookie field is over the limit
	// (H25 oversized cookies).
	ErrCookieTooLong = errors.New("h1: cookie too large")
	// ErrMalformed: the head breaks the syntax or framing rules (400 H26
	// bad header on requests, H17 on responses).
	ErrMalformed = errors.New("h1: malformed message head")
	// ErrUnsupportedExpect: an Expect value other than 100-continue (417).
	ErrUnsupportedExpect = errors.New("h1: unsupported expect value")
	// ErrBadChunk: the chunked body is malformed (400 H26 bad chunk on
	// requests, H17/H18 on responses).
	ErrBadChunk = errors.New("h1: bad chunk")
	// ErrEmpty: the peer closed before sending any byte of a message.
	ErrEmpty = errors.New("h1: connection closed before a message")

	errFull = errors.New("h1: buffer full")
)
