package h2

import (
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// readBufSize is the connection read buffer: a whole frame of the largest
// size we accept (its 9-byte header included) fits, so DATA, HEADERS and
// CONTINUATION payloads are parsed where they were read.
const readBufSize = 32 << 10

type readBuf [readBufSize]byte

var readBufPool = sync.Pool{New: func() any { return new(readBuf) }}

// bufReader buffers reads from the connection for the Framer (frame
// headers, control frames) and the reader's own payload parsing. Its
// buffer goes back to the pool whenever every byte read was processed:
// the reader then blocks reading the next frame header straight into the
// Framer's 9 bytes, so a connection waiting for its client (idle, or with
// streams that wait on dynos) holds no read buffer. Under TLS this costs
// one more tls.Conn.Read per batch of frames, from the record already
// decrypted.
type bufReader struct {
	c    *Conn
	buf  *readBuf // nil when released
	r, w int
}

func (b *bufReader) buffered() int { return b.w - b.r }

// Read implements io.Reader for the Framer.
func (b *bufReader) Read(p []byte) (int, error) {
	if b.r == b.w {
		if len(p) <= 64 {
			b.release()
			return b.c.readConn(p)
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// fill reads at least one byte into an empty buffer.
func (b *bufReader) fill() error {
	if b.buf == nil {
		b.buf = readBufPool.Get().(*readBuf)
	}
	b.r, b.w = 0, 0
	n, err := b.c.readConn(b.buf[:])
	b.w = n
	if n > 0 {
		return nil
	}
	return err
}

// next returns the next n bytes (n <= readBufSize), reading until they are
// buffered. The slice is valid until the next read.
func (b *bufReader) next(n int) ([]byte, error) {
	if b.buf == nil {
		b.buf = readBufPool.Get().(*readBuf)
		b.r, b.w = 0, 0
	}
	for b.w-b.r < n {
		if b.r == b.w {
			b.r, b.w = 0, 0
		} else if len(b.buf)-b.r < n {
			b.w = copy(b.buf[:], b.buf[b.r:b.w])
			b.r = 0
		}
		m, err := b.c.readConn(b.buf[b.w:])
		b.w += m
		if err != nil && b.w-b.r < n {
			return nil, err
		}
	}
	p := b.buf[b.r : b.r+n : b.r+n]
	b.r += n
	return p, nil
}

// discard drops the next n bytes.
func (b *bufReader) discard(n int) error {
	for n > 0 {
		if b.r == b.w {
			if err := b.fill(); err != nil {
				return err
			}
		}
		m := min(n, b.w-b.r)
		b.r += m
		n -= m
	}
	return nil
}

// release gives an empty buffer back to the pool.
func (b *bufReader) release() {
	if b.buf != nil && b.r == b.w {
		readBufPool.Put(b.buf)
		b.buf, b.r, b.w = nil, 0, 0
	}
}

// readConn reads from the connection; only the reader calls it, when
// every buffered byte was used. A read deadline that passes is not an
// error by itself: the connection decides (onReadTimeout) whether it ends
// the read loop (preface timeout, idle timeout, drain complete) or the
// read goes on, so the Framer never sees a frame cut by a deadline.
func (c *Conn) readConn(p []byte) (int, error) {
	// Every complete frame read so far was processed: streams decoded
	// from it start now, before the read may block.
	c.startPending()
	for {
		n, err := c.nc.Read(p)
		if n > 0 || err == nil {
			return n, nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return 0, err
		}
		d, terr := c.onReadTimeout()
		if terr != nil {
			return 0, terr
		}
		_ = c.nc.SetReadDeadline(d)
	}
}

// readLoop reads and processes frames until the connection ends.
func (c *Conn) readLoop() error {
	for {
		if c.br.buffered() == 0 {
			c.beforeBlocking()
		}
		fh, err := c.fr.ReadFrameHeader()
		if err != nil {
			return frameReadError(err)
		}
		if err := c.processFrame(fh); err != nil {
			return err
		}
	}
}

// beforeBlocking runs when every frame read so far is processed: a Framer
// whose buffer a large control frame grew is replaced. (Pending handlers
// start in readConn, the read buffer goes back to the pool in
// bufReader.Read.)
func (c *Conn) beforeBlocking() {
	if c.frBig && !c.inBlock {
		c.fr, c.frBig = c.newFramer(), false
	}
}

// frameReadError maps the Framer's errors to connection errors (RFC 9113
// sections 4.2 and 6.10); other errors are the connection's own.
func frameReadError(err error) error {
	if errors.Is(err, http2.ErrFrameTooLarge) {
		return connError{code: http2.ErrCodeFrameSize, reason: "frame larger than SETTINGS_MAX_FRAME_SIZE"}
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		return connError{code: http2.ErrCode(ce), reason: "frame out of order"}
	}
	return err
}

// processFrame reads the payload of the frame fh announced and acts on it.
// DATA, HEADERS, CONTINUATION, RST_STREAM, WINDOW_UPDATE, PRIORITY and
// GOAWAY payloads are parsed here, in the read buffer, without an
// allocation; SETTINGS and PING go through the Framer.
func (c *Conn) processFrame(fh http2.FrameHeader) error {
	if !c.sawSettings {
		// RFC 9113 section 3.4: the preface is followed by SETTINGS.
		if fh.Type != http2.FrameSettings || fh.Flags.Has(http2.FlagSettingsAck) {
			return protocolError("first frame is not SETTINGS")
		}
	}
	var err error
	switch fh.Type {
	case http2.FrameData:
		err = c.withPayload(fh, c.onData)
	case http2.FrameHeaders:
		err = c.withPayload(fh, c.onHeaders)
	case http2.FrameContinuation:
		err = c.withPayload(fh, c.onContinuation)
	case http2.FrameRSTStream:
		err = c.withPayload(fh, c.onRSTStream)
	case http2.FrameWindowUpdate:
		err = c.withPayload(fh, c.onWindowUpdate)
	case http2.FramePriority:
		err = c.withPayload(fh, c.onPriority)
	case http2.FrameGoAway:
		err = c.withPayload(fh, c.onGoAway)
	case http2.FrameSettings, http2.FramePing:
		err = c.framerFrame(fh)
	case http2.FramePushPromise:
		// RFC 9113 section 8.4: a client cannot push.
		err = protocolError("PUSH_PROMISE from a client")
	default:
		// RFC 9113 section 5.5: unknown frame types are ignored (the
		// Framer already refused one inside a header block). This
		// includes PRIORITY_UPDATE (RFC 9218), which we do not use.
		err = c.br.discard(int(fh.Length))
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	over := c.nControl > maxQueuedControl
	c.mu.Unlock()
	if over {
		return abuseError("too many control frames queued", abuseControlQueue)
	}
	return nil
}

// withPayload reads the frame's payload and passes it to fn.
func (c *Conn) withPayload(fh http2.FrameHeader, fn func(http2.FrameHeader, []byte) error) error {
	p, err := c.br.next(int(fh.Length))
	if err != nil {
		return err
	}
	return fn(fh, p)
}

// framerFrame reads a SETTINGS or PING frame with the Framer, which
// validates its size and stream.
func (c *Conn) framerFrame(fh http2.FrameHeader) error {
	if fh.Length > 64 {
		c.frBig = true
	}
	f, err := c.fr.ReadFrameForHeader(fh)
	if err != nil {
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			return connError{code: http2.ErrCode(ce), reason: "bad " + fh.Type.String() + " frame"}
		}
		return err
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		return c.onPing(f)
	}
	return nil
}

// now is the reader's clock for the abuse budgets.
func now() time.Time { return time.Now() }
