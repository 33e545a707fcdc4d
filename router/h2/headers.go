package h2

import (
	"encoding/binary"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/spacerouter/spacerouter/router/h1"
)

// headerBlock is the header block (RFC 9113 section 4.3) being read: a
// HEADERS frame and its CONTINUATION frames, decoded as they arrive.
type headerBlock struct {
	id        uint32
	s         *Stream // a new request stream; nil otherwise
	trailers  bool    // trailers of the mapped stream id (section 8.1)
	badTrail  bool    // malformed trailers: a pseudo-header (section 8.3), no END_STREAM
	endStream bool
	resetCode http2.ErrCode // nonzero: reset stream id once the block is decoded
	size      int
}

// onHeaders handles a HEADERS frame (RFC 9113 section 6.2): a new request
// stream, trailers, or a block decoded only to keep the HPACK state
// (section 4.3) before its stream is refused.
func (c *Conn) onHeaders(fh http2.FrameHeader, p []byte) error {
	id := fh.StreamID
	if id == 0 {
		return protocolError("HEADERS on stream 0")
	}
	frag, err := unpad(fh, p)
	if err != nil {
		return err
	}
	selfDep := false
	if fh.Flags.Has(http2.FlagHeadersPriority) {
		if len(frag) < 5 {
			return protocolError("HEADERS priority fields missing")
		}
		selfDep = binary.BigEndian.Uint32(frag)&0x7fffffff == id
		frag = frag[5:]
	}
	if id%2 == 0 {
		// Section 5.1.1: clients use odd stream ids.
		return protocolError("HEADERS on an even stream id")
	}
	hb := headerBlock{id: id, endStream: fh.Flags.Has(http2.FlagHeadersEndStream)}
	c.mu.Lock()
	s := c.streams[id]
	switch {
	case s != nil:
		switch {
		case s.remoteEnd:
			// Section 5.1: half-closed (remote).
			hb.resetCode = http2.ErrCodeStreamClosed
		default:
			// Trailers; section 8.1: they end the stream, else the
			// message is malformed.
			hb.trailers = true
			hb.badTrail = !hb.endStream
		}
		if selfDep {
			hb.resetCode = http2.ErrCodeProtocol
		}
	case id <= c.lastID:
		if !c.recentlyResetLocked(id) {
			c.mu.Unlock()
			// Section 5.1: a frame after END_STREAM on a closed stream;
			// section 5.1.1: stream ids only increase.
			return connError{code: http2.ErrCodeStreamClosed, reason: "HEADERS on a closed stream"}
		}
	default:
		c.lastID = id
		switch {
		case selfDep:
			hb.resetCode = http2.ErrCodeProtocol // section 5.3.1
		case c.draining && id > c.goawayID, c.dead:
			hb.resetCode = http2.ErrCodeRefusedStream // section 6.8
		case uint32(len(c.streams)) >= c.cfg.MaxStreams:
			hb.resetCode = http2.ErrCodeRefusedStream // section 5.1.2
		default:
			hb.s = c.newStreamLocked(id, hb.endStream)
		}
	}
	c.mu.Unlock()
	c.hb, c.inBlock = hb, true
	if hb.s != nil {
		hb.s.hs.limits = &c.cfg.Limits
	}
	return c.feedBlock(frag, fh.Flags.Has(http2.FlagHeadersEndHeaders))
}

// onContinuation handles a CONTINUATION frame (RFC 9113 section 6.10); the
// Framer already refused one that does not continue the block.
func (c *Conn) onContinuation(fh http2.FrameHeader, p []byte) error {
	end := fh.Flags.Has(http2.FlagContinuationEndHeaders)
	if len(p) == 0 && !end {
		c.mu.Lock()
		ok := c.floods.empty.spend(now(), 1)
		c.mu.Unlock()
		if !ok {
			return abuseError("empty CONTINUATION frames", abuseEmptyFrames)
		}
	}
	return c.feedBlock(p, end)
}

// feedBlock decodes a fragment of the current header block. The block is
// bounded before decoding completes (CVE-2024-27316); fields are checked
// against the limits as they are emitted (onField).
func (c *Conn) feedBlock(frag []byte, end bool) error {
	hb := &c.hb
	hb.size += len(frag)
	if hb.size > c.maxBlock {
		return abuseError("header block over the cap", abuseContinuation)
	}
	c.dec.SetEmitEnabled(hb.trailers || hb.s != nil && hb.s.hs.storing())
	if len(frag) > 0 {
		if _, err := c.dec.Write(frag); err != nil {
			return connError{code: http2.ErrCodeCompression, reason: "HPACK: " + err.Error()}
		}
	}
	if !end {
		return nil
	}
	c.inBlock = false
	if err := c.dec.Close(); err != nil {
		return connError{code: http2.ErrCodeCompression, reason: "HPACK: " + err.Error()}
	}
	return c.endBlock()
}

// onField is the HPACK decoder's emit function.
func (c *Conn) onField(f hpack.HeaderField) {
	hb := &c.hb
	switch {
	case hb.trailers:
		// Trailers are dropped (SPEC.md section 4b); a pseudo-header in
		// them is malformed (RFC 9113 section 8.3).
		if len(f.Name) > 0 && f.Name[0] == ':' {
			hb.badTrail = true
		}
	case hb.s != nil:
		if !hb.s.hs.add(hb.s, f.Name, f.Value) {
			// A limit is broken: nothing more is stored, and the rest
			// of the block is only decoded for the HPACK state.
			c.dec.SetEmitEnabled(false)
		}
	}
}

// endBlock acts on a decoded header block.
func (c *Conn) endBlock() error {
	hb := &c.hb
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case hb.s != nil:
		s := hb.s
		hb.s = nil
		s.finishHead(hb.size)
		if hb.endStream {
			c.remoteEndLocked(s)
		}
		c.toStart = append(c.toStart, s)
		// A malformed request costs a handler and a reset, like a rapid
		// reset; completed requests refund it.
		if s.headErr == h1.ErrMalformed && !c.resets.spend(now(), 1) {
			return abuseError("too many malformed requests", abuseMalformed)
		}
	case hb.resetCode != 0:
		if !c.dead {
			return c.streamErrorLocked(hb.id, hb.resetCode)
		}
	case hb.trailers:
		s := c.streams[hb.id]
		switch {
		case s == nil:
		case hb.badTrail:
			c.resetLocked(s, http2.ErrCodeProtocol, ErrBodyLength)
		default:
			c.remoteEndLocked(s)
		}
	}
	return nil
}
