package errcodes

import "fmt"

// Code names one router-made outcome from the table in SPEC.md section 6.
// The zero Code, None, means the request had no router error.
type Code uint8

// The codes, one per distinct (H code, desc, cause, status) row. The doc
// comment of each gives its H code.
const (
	None                            Code = iota
	AppCrashed                           // H10
	BacklogTooDeep                       // H11
	RequestTimeout                       // H12
	ConnectionClosedWithoutResponse      // H13
	IdleConnection                       // H15
	PoorlyFormattedResponse              // H17
	ServerRequestInterrupted             // H18
	BackendConnectionTimeout             // H19
	BackendConnectionRefused             // H21
	OversizedRequestCookies              // H25, request side: 400
	OversizedRequestHeader               // H25, request side: 400
	OversizedRequestLine                 // H25, request side: 414
	OversizedResponseCookies             // H25, response side: 502
	OversizedResponseHeader              // H25, response side: 502
	OversizedResponseStatusLine          // H25, response side: 502
	UnsupportedExpect                    // H26 cause "unsupported expect header value": 417
	BadHeader                            // H26 cause "bad header": 400
	BadChunk                             // H26 cause "bad chunk": 400
	ClientInterrupted                    // H27
	ClientIdle                           // H28
	MisdirectedRequest                   // H31
	MaintenanceMode                      // H80
	PlatformError                        // H99
	ForcedClose                          // H24: still in flight when the shutdown limit ran out
	ClientCertRequired                   // H40: mtls require and no client certificate: 496
	ClientCertExpired                    // H41 cause "expired": 495
	ClientCertUnknownCA                  // H41 cause "unknown_ca": 495
	ClientCertRevoked                    // H41 cause "revoked": 495
	ClientCertBadUsage                   // H41 cause "bad_usage": 495
	ClientCertRetiredCA                  // H41 cause "retired_ca": 495
	ForbiddenByIPRule                    // H42: the client address matches no ip_rule: 403
	DynoCertExpired                      // H43 cause "expired": the dyno's certificate is outside its validity: 503
	DynoCertUnknownCA                    // H43 cause "unknown_ca": no chain to dyno_tls.trust: 503
	DynoCertNameMismatch                 // H43 cause "name_mismatch": verify-full and the name is not in the certificate: 503
	DynoCertBadUsage                     // H43 cause "bad_usage": any other verification failure (key usage, a CA that may not sign): 503
	numCodes
)

// Entry is one row of the table.
type Entry struct {
	// H is the code as written in router lines ("H12").
	H string
	// Level is the at= value: "info", "warning" or "error".
	Level string
	// Desc is the exact desc= string.
	Desc string
	// Cause is the cause= string, empty for codes that have none.
	Cause string
	// Status is the default response status (499 for the log-only codes).
	Status int
	// Sock is the sock= value written first on the line, or empty.
	Sock string
}

// table is indexed by Code. It is a lookup table, never written.
var table = [numCodes]Entry{
	None:                            {},
	AppCrashed:                      {H: "H10", Level: "error", Desc: "App crashed", Status: 503},
	BacklogTooDeep:                  {H: "H11", Level: "error", Desc: "Backlog too deep", Status: 503},
	RequestTimeout:                  {H: "H12", Level: "error", Desc: "Request timeout", Status: 503},
	ConnectionClosedWithoutResponse: {H: "H13", Level: "error", Desc: "Connection closed without response", Status: 503},
	IdleConnection:                  {H: "H15", Level: "error", Desc: "Idle connection", Status: 503},
	PoorlyFormattedResponse:         {H: "H17", Level: "error", Desc: "Poorly formatted HTTP response", Status: 503},
	ServerRequestInterrupted:        {H: "H18", Level: "error", Desc: "Server Request Interrupted", Status: 503, Sock: "backend"},
	BackendConnectionTimeout:        {H: "H19", Level: "error", Desc: "Backend connection timeout", Status: 503},
	BackendConnectionRefused:        {H: "H21", Level: "error", Desc: "Backend connection refused", Status: 503},
	OversizedRequestCookies:         {H: "H25", Level: "error", Desc: "HTTP restriction: oversized cookies", Status: 400},
	OversizedRequestHeader:          {H: "H25", Level: "error", Desc: "HTTP restriction: oversized header", Status: 400},
	OversizedRequestLine:            {H: "H25", Level: "error", Desc: "HTTP restriction: oversized status line", Status: 414},
	OversizedResponseCookies:        {H: "H25", Level: "error", Desc: "HTTP restriction: oversized cookies", Status: 502},
	OversizedResponseHeader:         {H: "H25", Level: "error", Desc: "HTTP restriction: oversized header", Status: 502},
	OversizedResponseStatusLine:     {H: "H25", Level: "error", Desc: "HTTP restriction: oversized status line", Status: 502},
	UnsupportedExpect:               {H: "H26", Level: "error", Desc: "Request Error", Cause: "unsupported expect header value", Status: 417},
	BadHeader:                       {H: "H26", Level: "error", Desc: "Request Error", Cause: "bad header", Status: 400},
	BadChunk:                        {H: "H26", Level: "error", Desc: "Request Error", Cause: "bad chunk", Status: 400},
	ClientInterrupted:               {H: "H27", Level: "warning", Desc: "Client Request Interrupted", Status: 499, Sock: "client"},
	ClientIdle:                      {H: "H28", Level: "warning", Desc: "Client Connection Idle", Status: 499},
	MisdirectedRequest:              {H: "H31", Level: "error", Desc: "Misdirected Request", Status: 421},
	MaintenanceMode:                 {H: "H80", Level: "info", Desc: "Maintenance mode", Status: 503},
	PlatformError:                   {H: "H99", Level: "error", Desc: "Platform error", Status: 503},
	ForcedClose:                     {H: "H24", Level: "error", Desc: "Forced close", Status: 503},
	ClientCertRequired:              {H: "H40", Level: "warning", Desc: "Client certificate required", Status: 496},
	ClientCertExpired:               {H: "H41", Level: "warning", Desc: "Client certificate rejected", Cause: "expired", Status: 495},
	ClientCertUnknownCA:             {H: "H41", Level: "warning", Desc: "Client certificate rejected", Cause: "unknown_ca", Status: 495},
	ClientCertRevoked:               {H: "H41", Level: "warning", Desc: "Client certificate rejected", Cause: "revoked", Status: 495},
	ClientCertBadUsage:              {H: "H41", Level: "warning", Desc: "Client certificate rejected", Cause: "bad_usage", Status: 495},
	ClientCertRetiredCA:             {H: "H41", Level: "warning", Desc: "Client certificate rejected", Cause: "retired_ca", Status: 495},
	ForbiddenByIPRule:               {H: "H42", Level: "warning", Desc: "Forbidden by IP rule", Status: 403},
	DynoCertExpired:                 {H: "H43", Level: "error", Desc: "Backend certificate rejected", Cause: "expired", Status: 503},
	DynoCertUnknownCA:               {H: "H43", Level: "error", Desc: "Backend certificate rejected", Cause: "unknown_ca", Status: 503},
	DynoCertNameMismatch:            {H: "H43", Level: "error", Desc: "Backend certificate rejected", Cause: "name_mismatch", Status: 503},
	DynoCertBadUsage:                {H: "H43", Level: "error", Desc: "Backend certificate rejected", Cause: "bad_usage", Status: 503},
}

// Entry returns the table row of c. None and unknown codes give the zero Entry.
func (c Code) Entry() Entry {
	if c >= numCodes {
		return Entry{}
	}
	return table[c]
}

// String returns the H code ("H12"), or "none".
func (c Code) String() string {
	if c == None || c >= numCodes {
		return "none"
	}
	return table[c].H
}

// Status returns the default response status of c (0 for None).
func (c Code) Status() int { return c.Entry().Status }

// All returns every code except None, in table order.
func All() []Code {
	out := make([]Code, 0, numCodes-1)
	for c := Code(1); c < numCodes; c++ {
		out = append(out, c)
	}
	return out
}

// Error is the outcome of a request the router answers itself, decided
// where it happened: a Code (its row gives desc, cause, sock and the
// status), or None with a Status for an answer that is no error (an
// unknown host's 404). Err is the cause.
type Error struct {
	Code Code
	// Status is the status the client is sent; 0 means the code's.
	Status int
	Err    error
}

// StatusOf returns the status the client is sent.
func (e *Error) StatusOf() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.Code.Status()
}

// Error returns the H code, the desc and the cause.
func (e *Error) Error() string {
	ent := e.Code.Entry()
	if e.Code == None {
		ent.H, ent.Desc = "status", fmt.Sprint(e.Status)
	}
	if e.Err == nil {
		return fmt.Sprintf("%s %s", ent.H, ent.Desc)
	}
	return fmt.Sprintf("%s %s: %v", ent.H, ent.Desc, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with code c and cause err.
func New(c Code, err error) *Error { return &Error{Code: c, Err: err} }
