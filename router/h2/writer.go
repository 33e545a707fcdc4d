package h2

import (
	"encoding/binary"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/spacerouter/spacerouter/router/h1"
)

// The write side. Streams (Send, Interim, Reset, Close, Read's window
// updates) and the reader (acknowledgements, resets, GOAWAY) append whole
// encoded frames to the connection's out buffer under c.mu — HPACK
// encoding included, so header blocks are encoded in the order they are
// written — and kick the writer. The writer goroutine swaps out for its
// spare buffer and writes the batch with one conn.Write: the frames of
// every stream that was ready go out in one TLS write. It starts on
// demand and exits when the connection is idle, so an idle connection
// holds neither the goroutine nor a buffer.

// frameBuf is a pooled write buffer.
type frameBuf struct{ b []byte }

var frameBufPool = sync.Pool{New: func() any { return &frameBuf{b: make([]byte, 0, 16<<10)} }}

// maxKeptFrameBuf: a buffer that grew past this is dropped, not kept.
const maxKeptFrameBuf = 2 * maxQueued

// outLocked returns the out buffer, taking one from the pool if needed.
func (c *Conn) outLocked() *frameBuf {
	if c.out == nil {
		c.out = frameBufPool.Get().(*frameBuf)
	}
	return c.out
}

// releaseWriteBuffersLocked gives back the buffers of an idle writer.
func (c *Conn) releaseWriteBuffersLocked() {
	if c.out != nil && len(c.out.b) == 0 {
		frameBufPool.Put(c.out)
		c.out = nil
	}
	if c.spare != nil {
		frameBufPool.Put(c.spare)
		c.spare = nil
	}
}

// appendFrameHeader appends a frame header (RFC 9113 section 4.1).
func appendFrameHeader(b []byte, n int, t http2.FrameType, f http2.Flags, id uint32) []byte {
	return append(b, byte(n>>16), byte(n>>8), byte(n), byte(t), byte(f),
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

// canQueueLocked reports whether frames may still be queued.
func (c *Conn) canQueueLocked() bool { return !c.broken && !c.stopped }

// queueControlLocked appends a control frame.
func (c *Conn) queueControlLocked(t http2.FrameType, f http2.Flags, id uint32, payload ...byte) {
	if !c.canQueueLocked() {
		return
	}
	o := c.outLocked()
	o.b = appendFrameHeader(o.b, len(payload), t, f, id)
	o.b = append(o.b, payload...)
	c.nControl++
	c.kickWriterLocked()
}

// queueSettingsLocked queues the server preface (RFC 9113 section 3.4):
// our SETTINGS, then the connection window beyond the initial 65535.
func (c *Conn) queueSettingsLocked() {
	var p [18]byte
	put := func(i int, id http2.SettingID, v uint32) {
		binary.BigEndian.PutUint16(p[i*6:], uint16(id))
		binary.BigEndian.PutUint32(p[i*6+2:], v)
	}
	put(0, http2.SettingMaxConcurrentStreams, c.cfg.MaxStreams)
	put(1, http2.SettingInitialWindowSize, uint32(c.cfg.StreamWindow))
	put(2, http2.SettingMaxFrameSize, frameSize)
	c.queueControlLocked(http2.FrameSettings, 0, 0, p[:]...)
	if n := int64(c.cfg.ConnWindow) - initialWindow; n > 0 {
		c.queueWindowUpdateLocked(0, n)
		c.recvWindow += n
	}
}

func (c *Conn) queueSettingsAckLocked() {
	c.queueControlLocked(http2.FrameSettings, http2.FlagSettingsAck, 0)
}

func (c *Conn) queuePingAckLocked(data [8]byte) {
	c.queueControlLocked(http2.FramePing, http2.FlagPingAck, 0, data[:]...)
}

func (c *Conn) queueRSTLocked(id uint32, code http2.ErrCode) {
	c.queueControlLocked(http2.FrameRSTStream, 0, id, byte(code>>24), byte(code>>16), byte(code>>8), byte(code))
}

// queueWindowUpdateLocked queues WINDOW_UPDATE(id, n), 0 < n <= 2^31-1.
func (c *Conn) queueWindowUpdateLocked(id uint32, n int64) {
	c.queueControlLocked(http2.FrameWindowUpdate, 0, id, byte(n>>24)&0x7f, byte(n>>16), byte(n>>8), byte(n))
}

// queueGoAwayLocked queues GOAWAY (RFC 9113 section 6.8) with a short
// debug text.
func (c *Conn) queueGoAwayLocked(last uint32, code http2.ErrCode, debug string) {
	if !c.canQueueLocked() {
		return
	}
	c.goawaySent = true
	o := c.outLocked()
	o.b = appendFrameHeader(o.b, 8+len(debug), http2.FrameGoAway, 0, 0)
	o.b = binary.BigEndian.AppendUint32(o.b, last&0x7fffffff)
	o.b = binary.BigEndian.AppendUint32(o.b, uint32(code))
	o.b = append(o.b, debug...)
	c.kickWriterLocked()
}

// appendDataLocked queues a DATA frame (len(data) <= the client's
// SETTINGS_MAX_FRAME_SIZE).
func (c *Conn) appendDataLocked(id uint32, data []byte, end bool) {
	if !c.canQueueLocked() {
		return
	}
	var f http2.Flags
	if end {
		f = http2.FlagDataEndStream
	}
	o := c.outLocked()
	o.b = appendFrameHeader(o.b, len(data), http2.FrameData, f, id)
	o.b = append(o.b, data...)
}

// encodeWithTable switches response header encoding to an HPACK dynamic
// table of the default 4096 bytes, with the field strings copied. It is
// false: see newEncoder. Benchmarks flip it to measure the other choice.
var encodeWithTable = false

// newEncoder returns the connection's HPACK encoder, writing into out.
//
// It uses no dynamic table (a table size update to 0 starts the first
// block, RFC 7541 section 6.3). Nothing the encoder is given is retained,
// so fields are passed as strings that alias the caller's bytes, with no
// copy and no allocation; an idle connection holds no table. The cost is
// bytes: a repeated field is sent as a literal with a static-table name
// instead of a one-byte index (see BenchmarkEncodeHead for both).
func newEncoder(c *Conn) *hpack.Encoder {
	e := hpack.NewEncoder(encSink{c})
	if !encodeWithTable {
		e.SetMaxDynamicTableSizeLimit(0)
	}
	return e
}

// encSink appends what the encoder writes to the out buffer.
type encSink struct{ c *Conn }

func (w encSink) Write(p []byte) (int, error) {
	o := w.c.out
	o.b = append(o.b, p...)
	return len(p), nil
}

// str aliases b as a string, for the encoder only (it keeps nothing).
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if encodeWithTable {
		return string(b)
	}
	return unsafe.String(&b[0], len(b))
}

// appendHeadLocked queues a response head: HEADERS, and CONTINUATION
// frames if the block is larger than the client's SETTINGS_MAX_FRAME_SIZE.
func (c *Conn) appendHeadLocked(id uint32, status int, fields []h1.Field, cl int64, end bool) {
	if !c.canQueueLocked() {
		return
	}
	o := c.outLocked()
	start := len(o.b)
	o.b = append(o.b, 0, 0, 0, 0, 0, 0, 0, 0, 0) // the HEADERS frame header, set below
	c.scratch = strconv.AppendInt(c.scratch[:0], int64(status), 10)
	c.writeField(":status", c.scratch)
	for i := range fields {
		f := &fields[i]
		if f.Hop || len(f.Name) == 0 || f.Name[0] == ':' {
			continue
		}
		name := lowerName(f.Name, &c.scratch)
		switch string(name) {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length":
			continue
		}
		c.writeField(str(name), f.Value)
	}
	if cl >= 0 {
		c.scratch = strconv.AppendInt(c.scratch[:0], cl, 10)
		c.writeField("content-length", c.scratch)
	}
	flags := http2.FlagHeadersEndHeaders
	if end {
		flags |= http2.FlagHeadersEndStream
	}
	block := len(o.b) - start - 9
	if block <= c.peerMaxFrame {
		appendFrameHeader(o.b[start:start], block, http2.FrameHeaders, flags, id)
		return
	}
	c.splitHeadLocked(start, id, flags)
}

// writeField encodes one field.
func (c *Conn) writeField(name string, value []byte) {
	_ = c.enc.WriteField(hpack.HeaderField{Name: name, Value: str(value)})
}

// splitHeadLocked cuts the header block queued at start into a HEADERS
// frame and CONTINUATION frames (RFC 9113 section 6.10).
func (c *Conn) splitHeadLocked(start int, id uint32, flags http2.Flags) {
	o := c.out
	block := append([]byte(nil), o.b[start+9:]...)
	o.b = o.b[:start]
	t, f := http2.FrameHeaders, flags&^http2.FlagHeadersEndHeaders
	for len(block) > 0 {
		n := min(len(block), c.peerMaxFrame)
		if n == len(block) {
			f |= http2.FlagHeadersEndHeaders
		}
		o.b = appendFrameHeader(o.b, n, t, f, id)
		o.b = append(o.b, block[:n]...)
		block = block[n:]
		t, f = http2.FrameContinuation, 0
	}
}

// lowerName returns name in lower case: name itself, or a copy in *buf.
func lowerName(name []byte, buf *[]byte) []byte {
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			b := append((*buf)[:0], name...)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			*buf = b
			return b
		}
	}
	return name
}

// kickWriterLocked makes the writer write what is queued, starting it if
// it is not running.
func (c *Conn) kickWriterLocked() {
	if c.writerRunning {
		c.wakeWriterLocked()
		return
	}
	if !c.serving || c.broken || c.stopped || c.out == nil || len(c.out.b) == 0 {
		return
	}
	c.writerRunning = true
	c.wg.Add(1)
	go c.writer()
}

// wakeWriterLocked wakes the writer if it waits for frames; a writer at
// work looks at the queue again before it waits.
func (c *Conn) wakeWriterLocked() {
	if c.writerWaiting {
		signal(c.wwake)
	}
}

// writeLoop is the writer goroutine.
func (c *Conn) writeLoop() {
	defer c.wg.Done()
	c.mu.Lock()
	for {
		for c.broken || c.out == nil || len(c.out.b) == 0 {
			if c.broken || c.dead || c.idleLocked() {
				c.writerRunning = false
				c.releaseWriteBuffersLocked()
				c.wcond.Broadcast()
				c.mu.Unlock()
				return
			}
			c.writerWaiting = true
			c.mu.Unlock()
			<-c.wwake
			c.mu.Lock()
			c.writerWaiting = false
		}
		// Let the goroutines that are ready run first: the frames of
		// the streams they serve join this batch.
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
		b := c.out
		c.out, c.spare = c.spare, nil
		c.nControl = 0
		c.wakeSendersLocked()
		dl := c.writeDeadlineLocked(len(b.b))
		c.mu.Unlock()
		if !dl.IsZero() {
			_ = c.nc.SetWriteDeadline(dl)
		}
		_, err := c.nc.Write(b.b)
		c.mu.Lock()
		b.b = b.b[:0]
		if cap(b.b) <= maxKeptFrameBuf && c.spare == nil {
			c.spare = b
		}
		if err != nil && !c.broken {
			c.broken = true
			c.killStreamsLocked()
			c.mu.Unlock()
			_ = c.nc.Close()
			c.mu.Lock()
		}
	}
}

// writeDeadlineLocked returns the write deadline for a batch of n bytes,
// or zero to keep the current one: a client that takes nothing for a rate
// window (MinRate) or an idle timeout is cut. The deadline moves only when
// it would move by min(1 s, an eighth of it) or more, so a busy connection
// does not set it for every batch; it is never early.
func (c *Conn) writeDeadlineLocked(n int) time.Time {
	var d time.Duration
	switch {
	case c.dead:
		return time.Time{} // the final flush has its own deadline
	case c.cfg.MinRate > 0:
		d = rateWindow + time.Duration(float64(n)/float64(c.cfg.MinRate)*float64(time.Second))
	case c.cfg.IdleTimeout > 0:
		d = c.cfg.IdleTimeout
	default:
		return time.Time{}
	}
	want := time.Now().Add(d)
	if !c.wdeadline.IsZero() && c.wdeadline.After(want.Add(-min(time.Second, d/8))) {
		return time.Time{}
	}
	c.wdeadline = want
	return want
}
