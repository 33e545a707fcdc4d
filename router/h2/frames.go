package h2

import (
	"encoding/binary"

	"golang.org/x/net/http2"
)

// This file holds the reader's handling of every frame type but HEADERS
// and CONTINUATION (headers.go). Stream errors reset the stream (RFC 9113
// section 5.4.2); connection errors are returned and end the connection
// with GOAWAY (section 5.4.1).

// unpad strips the padding of a DATA or HEADERS payload (RFC 9113 sections
// 6.1 and 6.2): padding as long as the payload or longer is a connection
// PROTOCOL_ERROR.
func unpad(fh http2.FrameHeader, p []byte) ([]byte, error) {
	if !fh.Flags.Has(http2.FlagDataPadded) { // same bit as FlagHeadersPadded
		return p, nil
	}
	if len(p) == 0 || int(p[0]) >= len(p) {
		return nil, protocolError("padding longer than the payload")
	}
	return p[1 : len(p)-int(p[0])], nil
}

// onData handles a DATA frame (RFC 9113 section 6.1).
func (c *Conn) onData(fh http2.FrameHeader, p []byte) error {
	id := fh.StreamID
	if id == 0 {
		return protocolError("DATA on stream 0")
	}
	data, err := unpad(fh, p)
	if err != nil {
		return err
	}
	n := int64(fh.Length)
	end := fh.Flags.Has(http2.FlagDataEndStream)
	c.mu.Lock()
	defer c.mu.Unlock()
	// Every DATA frame counts against the connection window, whatever its
	// stream (section 6.9).
	if n > c.recvWindow {
		return connError{code: http2.ErrCodeFlowControl, reason: "DATA beyond the connection window"}
	}
	c.recvWindow -= n
	s := c.streams[id]
	if s == nil {
		if id > c.lastID {
			return protocolError("DATA on an idle stream")
		}
		c.creditConnLocked(n)
		if !c.recentlyResetLocked(id) {
			// Section 5.1, closed: STREAM_CLOSED, once per stream while
			// it is remembered. Not charged to the reset budget: many
			// uploads answered early leave DATA in flight.
			c.queueRSTLocked(id, http2.ErrCodeStreamClosed)
			c.noteResetLocked(id)
		}
		return nil
	}
	if s.remoteEnd {
		c.creditConnLocked(n)
		c.resetLocked(s, http2.ErrCodeStreamClosed, ErrStreamReset)
		return nil
	}
	if n > s.recvWindow+c.windowSlackLocked() {
		c.creditConnLocked(n)
		c.resetLocked(s, http2.ErrCodeFlowControl, ErrStreamReset)
		return nil
	}
	s.recvWindow -= n
	if len(data) == 0 && !end && !c.floods.empty.spend(now(), 1) {
		return abuseError("empty DATA frames", abuseEmptyFrames)
	}
	if s.declLen >= 0 && s.recvd+int64(len(data)) > s.declLen {
		// RFC 9113 section 8.1.1: more body than content-length.
		c.creditConnLocked(n)
		c.resetLocked(s, http2.ErrCodeProtocol, ErrBodyLength)
		return nil
	}
	s.recvd += int64(len(data))
	if pad := n - int64(len(data)); pad > 0 {
		// Padding is never read by the handler: return it at once.
		c.creditLocked(s, pad)
	}
	if len(data) > 0 {
		s.body.write(data, s.declLen-s.recvd)
		s.wakeReadLocked()
	}
	if end {
		c.remoteEndLocked(s)
	}
	return nil
}

// windowSlackLocked is what a client may send beyond a stream window
// smaller than the initial 65535 before it received our SETTINGS (RFC 9113
// section 6.9.2 lets it use the initial window until then).
func (c *Conn) windowSlackLocked() int64 {
	if c.settingsAcked {
		return 0
	}
	return max(0, initialWindow-int64(c.cfg.StreamWindow))
}

// refuseLocked resets a stream that is not (or no longer) mapped. Each
// costs a frame, so it is charged to the reset budget, except the streams
// a draining connection refuses: a busy client may have many in flight
// when it gets the GOAWAY.
func (c *Conn) refuseLocked(id uint32, code http2.ErrCode) error {
	c.queueRSTLocked(id, code)
	c.noteResetLocked(id)
	if !c.draining && !c.resets.spend(now(), 1) {
		return abuseError("too many refused or closed streams", abuseRapidReset)
	}
	return nil
}

// onRSTStream handles a client's RST_STREAM (RFC 9113 section 6.4).
func (c *Conn) onRSTStream(fh http2.FrameHeader, p []byte) error {
	if len(p) != 4 {
		return connError{code: http2.ErrCodeFrameSize, reason: "RST_STREAM length"}
	}
	id := fh.StreamID
	if id == 0 {
		return protocolError("RST_STREAM on stream 0")
	}
	c.mu.Lock()
	s := c.streams[id]
	if s == nil {
		c.mu.Unlock()
		if id > c.lastID {
			return protocolError("RST_STREAM on an idle stream")
		}
		return nil // closed already
	}
	c.clientResetLocked(s)
	early := !s.started
	if early {
		c.dropUnstartedLocked(s)
		s.release()
	}
	// CVE-2023-44487: resets in excess of completed streams.
	ok := c.resets.spend(now(), 1)
	c.mu.Unlock()
	if early && c.cfg.OnEarlyReset != nil {
		c.cfg.OnEarlyReset()
	}
	if !ok {
		return abuseError("too many stream resets", abuseRapidReset)
	}
	return nil
}

// onWindowUpdate handles WINDOW_UPDATE (RFC 9113 section 6.9).
func (c *Conn) onWindowUpdate(fh http2.FrameHeader, p []byte) error {
	if len(p) != 4 {
		return connError{code: http2.ErrCodeFrameSize, reason: "WINDOW_UPDATE length"}
	}
	inc := int64(binary.BigEndian.Uint32(p) & 0x7fffffff)
	id := fh.StreamID
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 {
		if inc == 0 {
			return protocolError("WINDOW_UPDATE of 0 on the connection")
		}
		c.sendWindow += inc
		if c.sendWindow > maxWindow {
			return connError{code: http2.ErrCodeFlowControl, reason: "connection window over 2^31-1"}
		}
		c.wakeSendersLocked()
		return nil
	}
	s := c.streams[id]
	if s == nil {
		if id > c.lastID {
			return protocolError("WINDOW_UPDATE on an idle stream")
		}
		return nil // section 6.9: allowed on closed streams
	}
	if inc == 0 {
		c.resetLocked(s, http2.ErrCodeProtocol, ErrStreamReset)
		return nil
	}
	s.sendWindow += inc
	if s.sendWindow > maxWindow {
		c.resetLocked(s, http2.ErrCodeFlowControl, ErrStreamReset)
		return nil
	}
	s.wakeSendLocked()
	return nil
}

// onPriority handles PRIORITY (RFC 9113 section 6.3, deprecated): nothing
// is scheduled by priority, but the frame is checked and counted.
func (c *Conn) onPriority(fh http2.FrameHeader, p []byte) error {
	id := fh.StreamID
	if id == 0 {
		return protocolError("PRIORITY on stream 0")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.floods.priority.spend(now(), 1) {
		return abuseError("too many PRIORITY frames", abusePriority)
	}
	switch {
	case len(p) != 5:
		return c.streamErrorLocked(id, http2.ErrCodeFrameSize)
	case binary.BigEndian.Uint32(p)&0x7fffffff == id:
		// Section 5.3.1: a stream cannot depend on itself.
		return c.streamErrorLocked(id, http2.ErrCodeProtocol)
	}
	return nil
}

// streamErrorLocked resets stream id, mapped or not.
func (c *Conn) streamErrorLocked(id uint32, code http2.ErrCode) error {
	if s := c.streams[id]; s != nil {
		c.resetLocked(s, code, ErrStreamReset)
		return nil
	}
	return c.refuseLocked(id, code)
}

// onGoAway handles a client's GOAWAY (RFC 9113 section 6.8): the
// connection drains as after Shutdown.
func (c *Conn) onGoAway(fh http2.FrameHeader, p []byte) error {
	if fh.StreamID != 0 {
		return protocolError("GOAWAY on a stream")
	}
	if len(p) < 8 {
		return connError{code: http2.ErrCodeFrameSize, reason: "GOAWAY length"}
	}
	c.mu.Lock()
	c.startDrainLocked()
	c.mu.Unlock()
	return nil
}

// onPing answers a PING (RFC 9113 section 6.7); an acknowledgement is
// ignored (this end sends no PING).
func (c *Conn) onPing(f *http2.PingFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.floods.ping.spend(now(), 1) {
		return abuseError("too many PING frames", abusePing)
	}
	c.queuePingAckLocked(f.Data)
	return nil
}

// onSettings applies a SETTINGS frame (RFC 9113 section 6.5): values in
// the order they appear, repeated ones included (section 6.5.3), then the
// acknowledgement.
func (c *Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		c.mu.Lock()
		c.settingsAcked = true
		c.mu.Unlock()
		return nil
	}
	first := !c.sawSettings
	c.sawSettings = true
	c.mu.Lock()
	if !c.floods.settings.spend(now(), 1) {
		c.mu.Unlock()
		return abuseError("too many SETTINGS frames", abuseSettings)
	}
	for i := range f.NumSettings() {
		if err := c.applySettingLocked(f.Setting(i)); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.queueSettingsAckLocked()
	c.mu.Unlock()
	if first {
		c.prefaceReceived()
	}
	return nil
}

// applySettingLocked applies one setting (RFC 9113 section 6.5.2).
func (c *Conn) applySettingLocked(s http2.Setting) error {
	if err := s.Valid(); err != nil {
		if ce, ok := err.(http2.ConnectionError); ok {
			return connError{code: http2.ErrCode(ce), reason: "bad " + s.ID.String()}
		}
		return protocolError("bad " + s.ID.String())
	}
	switch s.ID {
	case http2.SettingInitialWindowSize:
		// Section 6.9.2: the change applies to every open stream's
		// window, which may go negative; past 2^31-1 is an error.
		delta := int64(s.Val) - c.peerInitWindow
		c.peerInitWindow = int64(s.Val)
		for _, st := range c.streams {
			st.sendWindow += delta
			if st.sendWindow > maxWindow {
				return connError{code: http2.ErrCodeFlowControl, reason: "stream window over 2^31-1"}
			}
		}
		if delta > 0 {
			c.wakeSendersLocked()
		}
	case http2.SettingMaxFrameSize:
		c.peerMaxFrame = int(s.Val)
	}
	// SETTINGS_HEADER_TABLE_SIZE needs nothing: our encoder uses no
	// dynamic table (writer.go). ENABLE_PUSH, MAX_CONCURRENT_STREAMS and
	// MAX_HEADER_LIST_SIZE do not bind a server that never pushes and
	// sends its fields regardless; unknown settings are ignored.
	return nil
}
