package h2

import (
	"time"

	"github.com/spacerouter/spacerouter/router/h1"
)

// Config is fixed for a connection: the router passes the values of its
// config at accept time. Zero fields take the defaults named in their
// comments.
type Config struct {
	// MaxStreams is SETTINGS_MAX_CONCURRENT_STREAMS (limits.h2_max_streams;
	// default 250). A HEADERS frame that opens one more stream gets
	// RST_STREAM(REFUSED_STREAM) (RFC 9113 section 5.1.2).
	MaxStreams uint32
	// Limits bound each request head as for HTTP/1 (SPEC.md section 2
	// limits; a zero field takes the SPEC default): StartLine bounds
	// len(:method)+1+len(:path), Method bounds :method, FieldName, Field
	// (name + ": " + value), Cookie (the joined cookie field), HeadersSize
	// (name+value+4 per regular field) and FieldCount.
	Limits h1.Limits
	// StreamWindow is the receive window of each stream, in bytes: how much
	// request body is buffered before the handler reads it (default 256
	// KiB; at most 2^31-1).
	StreamWindow int32
	// ConnWindow is the connection's receive window in bytes (default 1
	// MiB; at least 65535, the initial window of RFC 9113 section 6.9.2).
	ConnWindow int32
	// IdleTimeout closes the connection (GOAWAY(NO_ERROR) first) when no
	// stream has been open for this long (timeouts.keepalive). Zero: never.
	IdleTimeout time.Duration
	// PrefaceTimeout bounds the wait for the client preface and first
	// SETTINGS frame (default 10 s).
	PrefaceTimeout time.Duration
	// MinRate is limits.min_transfer_rate in bytes a second (0: off): a
	// Send whose bytes wait for the client gets ErrSlowClient when fewer
	// than MinRate*10 bytes of its stream went out while it waited 10 s.
	MinRate int

	// Hooks, all optional, are called from the connection's goroutines,
	// never with its lock held, and must not block.

	// OnEarlyReset is called for each stream the client reset before its
	// handler started; that stream never reaches the Handler.
	OnEarlyReset func()
	// OnAbuse is called when the connection is ended with
	// GOAWAY(ENHANCE_YOUR_CALM): reason is one of "rapid_reset",
	// "ping_flood", "settings_flood", "empty_frames", "priority_flood",
	// "continuation_flood", "malformed_requests", or "control_queue" (the
	// client does not read the control frames it provokes).
	OnAbuse func(reason string)
	// OnConnError is called with the protocol error that ended the
	// connection, or a handler's recovered panic, for a debug log.
	OnConnError func(err error)
}

// Defaults of Config and of the limits (SPEC.md section 2).
const (
	DefaultMaxStreams     = 250
	DefaultStreamWindow   = 256 << 10
	DefaultConnWindow     = 1 << 20
	DefaultPrefaceTimeout = 10 * time.Second

	initialWindow = 65535     // RFC 9113 section 6.9.2
	maxWindow     = 1<<31 - 1 // RFC 9113 section 6.9.1
	frameSize     = 16384     // SETTINGS_MAX_FRAME_SIZE we advertise and accept
)

// DefaultLimits are the request limits of SPEC.md section 2.
var DefaultLimits = h1.Limits{
	StartLine:   8192,
	Method:      127,
	FieldName:   1000,
	Field:       524288,
	Cookie:      524288,
	HeadersSize: 1048576,
	FieldCount:  1000,
}

// withDefaults returns a copy of cfg with zero fields set to defaults and
// the windows kept in range.
func (cfg *Config) withDefaults() Config {
	c := *cfg
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.StreamWindow <= 0 {
		c.StreamWindow = DefaultStreamWindow
	}
	if c.ConnWindow <= 0 {
		c.ConnWindow = DefaultConnWindow
	}
	c.ConnWindow = max(c.ConnWindow, initialWindow)
	if c.PrefaceTimeout <= 0 {
		c.PrefaceTimeout = DefaultPrefaceTimeout
	}
	l, d := &c.Limits, &DefaultLimits
	for _, p := range [...]struct {
		v *int
		d int
	}{
		{&l.StartLine, d.StartLine}, {&l.Method, d.Method}, {&l.FieldName, d.FieldName},
		{&l.Field, d.Field}, {&l.Cookie, d.Cookie}, {&l.HeadersSize, d.HeadersSize},
		{&l.FieldCount, d.FieldCount},
	} {
		if *p.v <= 0 {
			*p.v = p.d
		}
	}
	return c
}

// blockCap is the hard cap on one header block (HEADERS + CONTINUATION
// payloads, compressed): past it the connection ends with
// GOAWAY(ENHANCE_YOUR_CALM) (CVE-2024-27316). A block within the cap but
// over a limit is a stream-level refusal (HeadErr). The cap is generous so
// that every limit is reached first: a head within the limits compresses
// to at most its size, and a Huffman code is never shorter than 5 bits.
func (cfg *Config) blockCap() int {
	l := &cfg.Limits
	return max(2*(l.HeadersSize+l.StartLine), 64<<10)
}

// Tunables tests shrink; they are never written outside tests.
var (
	// rateWindow is the window of the MinRate check (SPEC.md section 2:
	// averaged over each 10 s).
	rateWindow = 10 * time.Second
	// lingerTimeout bounds how long a closing connection reads and drops
	// what the client still sends after the final GOAWAY, so the client
	// reads that GOAWAY instead of a TCP reset.
	lingerTimeout = time.Second
)
