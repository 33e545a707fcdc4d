package h2

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2"
)

// Errors a Stream's methods return. The router compares them with
// errors.Is.
var (
	// ErrStreamReset: the client reset the stream (RST_STREAM).
	ErrStreamReset = errors.New("h2: stream reset by the client")
	// ErrConnClosed: the connection ended (closed, failed, or ended by a
	// connection error) before the stream did.
	ErrConnClosed = errors.New("h2: connection closed")
	// ErrBodyLength: the request body broke its framing: the DATA payloads
	// differ from a non-zero content-length (RFC 9113 section 8.1.1), or
	// the trailers were malformed. The stream was already reset with
	// PROTOCOL_ERROR when Read returns it (SPEC.md section 4: H26 bad
	// chunk).
	ErrBodyLength = errors.New("h2: request body length differs from content-length")
	// ErrSlowClient: response bytes waited for the client (flow control or
	// the connection's writer) and fewer than Config.MinRate bytes a second
	// went out over a whole rate window (SPEC.md section 2
	// min_transfer_rate: H27).
	ErrSlowClient = errors.New("h2: client reads the response too slowly")

	// errStreamDone: the stream already ended on this side (END_STREAM or
	// a reset sent), or the handler used it out of order.
	errStreamDone = errors.New("h2: stream already ended")
	// errNoHead: Send without a head before the first head was sent.
	errNoHead = errors.New("h2: first Send needs a head")
	// errHeadSent: a second response head.
	errHeadSent = errors.New("h2: response head already sent")
	// errBadStatus: an interim status outside 1xx (or 101, which RFC 9113
	// section 8.6 removes from HTTP/2), or a final status outside 200-999.
	errBadStatus = errors.New("h2: status not allowed here")
)

// connError ends the connection with GOAWAY(code) (RFC 9113 section
// 5.4.1). abuse names the limit a misbehaving client hit ("" for a
// protocol error); it is passed to Config.OnAbuse.
type connError struct {
	code   http2.ErrCode
	reason string
	abuse  string
}

func (e connError) Error() string {
	if e.abuse != "" {
		return fmt.Sprintf("h2: connection error %v: %s (%s)", e.code, e.reason, e.abuse)
	}
	return fmt.Sprintf("h2: connection error %v: %s", e.code, e.reason)
}

func protocolError(reason string) error {
	return connError{code: http2.ErrCodeProtocol, reason: reason}
}

func abuseError(reason, abuse string) error {
	return connError{code: http2.ErrCodeEnhanceYourCalm, reason: reason, abuse: abuse}
}

// Reasons passed to Config.OnAbuse.
const (
	abuseRapidReset   = "rapid_reset"
	abusePing         = "ping_flood"
	abuseSettings     = "settings_flood"
	abuseEmptyFrames  = "empty_frames"
	abusePriority     = "priority_flood"
	abuseContinuation = "continuation_flood"
	abuseControlQueue = "control_queue"
	abuseMalformed    = "malformed_requests"
)

// errIdle and errDrained end the read loop of a connection that closes
// gracefully: idle past Config.IdleTimeout, or drained after Shutdown.
var (
	errIdle    = errors.New("h2: idle timeout")
	errDrained = errors.New("h2: drained")
	errPreface = errors.New("h2: bad client preface")
)
