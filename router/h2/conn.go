package h2

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Handler serves the request streams of a connection.
type Handler interface {
	// ServeStream is called in a new goroutine per request stream, once
	// the stream's head is decoded (HeadErr may refuse it). It must call
	// s.Close before it returns; Close is called for it otherwise.
	ServeStream(s *Stream)
}

// Conn is one HTTP/2 server connection. NewConn makes it, Serve runs it;
// Shutdown, Close and Active are safe from any goroutine.
type Conn struct {
	nc  net.Conn
	cfg Config
	h   Handler

	// Owned by the goroutine running Serve (the reader).
	br          bufReader
	fr          *http2.Framer
	frBig       bool // the Framer's read buffer grew past a small control frame
	dec         *hpack.Decoder
	hb          headerBlock // the header block being read
	inBlock     bool
	toStart     []*Stream // decoded streams, started when the input is drained
	sawSettings bool
	maxBlock    int

	wg     sync.WaitGroup // handlers and the writer
	done   chan struct{}  // closed when the connection is dead for streams
	wwake  chan struct{}  // wakes the writer
	active atomic.Int32   // handlers running

	// mu guards every field below, the send and receive state of every
	// Stream of the connection, and the HPACK encoder.
	mu          sync.Mutex
	wcond       sync.Cond // signalled when the writer stops; uses mu
	streams     map[uint32]*Stream
	peakStreams int
	nHandlers   int
	waitStart   []*Stream // decoded streams waiting for a handler slot
	lastID      uint32    // highest client stream id processed
	idleSince   time.Time // when the last stream and handler ended; zero while busy
	prefaceDone bool
	serving     bool // Serve started: the writer may run

	draining   bool   // GOAWAY(NO_ERROR) sent: streams above goawayID refused
	goawayID   uint32 // last stream id the GOAWAY promised to serve
	goawaySent bool
	dead       bool // streams see ErrConnClosed
	broken     bool // the connection is closed or failed: nothing more is written
	stopped    bool // the final flush is done: no writer starts again

	out           *frameBuf // frames queued for the writer
	spare         *frameBuf // the writer's other buffer
	nControl      int       // control frames in out
	writerRunning bool
	writer        func() // c.writeLoop, bound once: starting the writer allocates nothing
	writerWaiting bool   // the writer waits on wwake
	sendWaiters   int    // streams blocked in Send
	enc           *hpack.Encoder
	scratch       []byte // name lower-casing and number formatting for the encoder
	wdeadline     time.Time

	sendWindow     int64 // the client's connection window (RFC 9113 section 6.9)
	peerInitWindow int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame   int   // the client's SETTINGS_MAX_FRAME_SIZE

	recvWindow    int64 // what the client may still send on the connection
	recvCredit    int64 // consumed bytes not yet returned in a WINDOW_UPDATE
	settingsAcked bool  // the client acknowledged our SETTINGS

	resets      budget // client resets of running streams (CVE-2023-44487)
	floods      abuseBudgets
	recentReset [32]uint32 // streams this end reset lately: their late frames are dropped
	recentIdx   int
}

// NewConn returns a connection serving nc with cfg (copied; zero fields
// take their defaults) and h.
func NewConn(nc net.Conn, cfg *Config, h Handler) *Conn {
	c := &Conn{
		nc:             nc,
		cfg:            cfg.withDefaults(),
		h:              h,
		done:           make(chan struct{}),
		wwake:          make(chan struct{}, 1),
		sendWindow:     initialWindow,
		peerInitWindow: initialWindow,
		peerMaxFrame:   frameSize,
		recvWindow:     initialWindow,
	}
	c.wcond.L = &c.mu
	c.writer = c.writeLoop
	c.br.c = c
	c.fr = c.newFramer()
	c.maxBlock = c.cfg.blockCap()
	c.dec = hpack.NewDecoder(4096, c.onField)
	// Huffman codes are at least 5 bits: no string of a block within the
	// cap decodes longer than this, so the decoder never refuses a string
	// and HPACK state stays whole whatever the limits refuse.
	c.dec.SetMaxStringLength(c.maxBlock*8/5 + 8)
	c.enc = newEncoder(c)
	// The server preface is queued first, so a GOAWAY from a Shutdown
	// before Serve follows it; Serve starts the writer.
	c.queueSettingsLocked()
	return c
}

func (c *Conn) newFramer() *http2.Framer {
	fr := http2.NewFramer(nil, &c.br)
	fr.SetMaxReadFrameSize(frameSize)
	fr.SetReuseFrames()
	return fr
}

// Active returns the number of request streams whose handlers are running.
func (c *Conn) Active() int { return int(c.active.Load()) }

// Serve reads the client preface and serves the connection until it ends:
// drained after Shutdown, idle past Config.IdleTimeout, closed, or ended
// by the client or by an error. It returns when every handler of the
// connection returned: nil for an orderly end, else the error that ended
// it (a protocol error, or the connection's own).
func (c *Conn) Serve() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.PrefaceTimeout))
	c.mu.Lock()
	c.serving = true
	c.kickWriterLocked()
	c.mu.Unlock()
	err := c.readPreface()
	if err == nil {
		err = c.readLoop()
	}
	return c.finish(err)
}

// readPreface reads the client connection preface (RFC 9113 section 3.4).
// The SETTINGS frame that must follow is checked by the frame loop.
func (c *Conn) readPreface() error {
	p, err := c.br.next(len(http2.ClientPreface))
	if err != nil {
		return err
	}
	if string(p) != http2.ClientPreface {
		return errPreface
	}
	return nil
}

// Shutdown starts a graceful drain: GOAWAY(NO_ERROR) names the last stream
// the connection will serve (RFC 9113 section 6.8), streams the client
// opens above it are refused with REFUSED_STREAM, and the connection
// closes once its open streams end. It is idempotent and safe from any
// goroutine.
func (c *Conn) Shutdown() {
	c.mu.Lock()
	c.startDrainLocked()
	c.mu.Unlock()
}

// startDrainLocked sends the one-step GOAWAY: the client learns the last
// stream id at once, and a stream it opened meanwhile is refused (safe to
// retry, RFC 9113 section 8.7), not half-served.
func (c *Conn) startDrainLocked() {
	if c.draining || c.dead {
		return
	}
	c.draining = true
	c.goawayID = c.lastID
	c.queueGoAwayLocked(c.goawayID, http2.ErrCodeNo, "")
	c.kickWriterLocked()
	if c.idleLocked() {
		c.wakeReaderLocked()
	}
}

// Close closes the connection at once: every stream's handler sees
// ErrConnClosed. Serve returns when the handlers did.
func (c *Conn) Close() {
	c.mu.Lock()
	c.broken = true
	c.killStreamsLocked()
	c.mu.Unlock()
	_ = c.nc.Close()
}

// wakeReaderLocked makes a reader blocked in Read look at the connection's
// state (drain complete, Shutdown of an idle connection).
func (c *Conn) wakeReaderLocked() {
	_ = c.nc.SetReadDeadline(time.Now())
}

// idleLocked reports that no stream is open and no handler runs.
func (c *Conn) idleLocked() bool {
	return len(c.streams) == 0 && c.nHandlers == 0
}

// noteIdleLocked is called when a stream closes or a handler returns.
func (c *Conn) noteIdleLocked() {
	if !c.idleLocked() {
		return
	}
	c.idleSince = time.Now()
	if c.writerRunning {
		c.wakeWriterLocked() // it exits, giving back its buffers
	}
	if c.peakStreams > 32 {
		// A map keeps the space it grew; an idle connection drops a big
		// one (a small one is kept: making it again costs allocations).
		c.streams, c.peakStreams = nil, 0
	}
	if c.draining {
		c.wakeReaderLocked()
	}
}

// onReadTimeout is called by the reader when a read deadline passed. It
// returns the next deadline, or the error that ends the read loop.
func (c *Conn) onReadTimeout() (time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	switch {
	case c.broken || c.dead:
		return time.Time{}, net.ErrClosed
	case !c.prefaceDone:
		return time.Time{}, errors.New("h2: no client preface within the preface timeout")
	case c.draining && c.idleLocked():
		return time.Time{}, errDrained
	case c.cfg.IdleTimeout <= 0:
		return time.Time{}, nil
	case c.idleLocked():
		if now.Sub(c.idleSince) >= c.cfg.IdleTimeout {
			return time.Time{}, errIdle
		}
		return c.idleSince.Add(c.cfg.IdleTimeout), nil
	}
	return now.Add(c.cfg.IdleTimeout), nil
}

// prefaceReceived is called when the client's first SETTINGS frame was
// processed: the preface deadline gives way to the idle timeout.
func (c *Conn) prefaceReceived() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prefaceDone = true
	c.idleSince = time.Now()
	var d time.Time
	switch {
	case c.draining:
		d = c.idleSince // Shutdown came first: drained already
	case c.cfg.IdleTimeout > 0:
		d = c.idleSince.Add(c.cfg.IdleTimeout)
	}
	_ = c.nc.SetReadDeadline(d)
}

// killStreamsLocked makes the connection dead for streams: blocked and
// later Reads and Sends return ErrConnClosed, OnGone callbacks run.
func (c *Conn) killStreamsLocked() {
	if c.dead {
		return
	}
	c.dead = true
	close(c.done)
	for _, s := range c.streams {
		s.markGoneLocked()
	}
	c.kickWriterLocked()
}

// finish ends the connection after the read loop returned err: the final
// GOAWAY, the flush, a lingering close, and the wait for handlers.
func (c *Conn) finish(err error) error {
	var ce connError
	code, goaway := http2.ErrCodeNo, false
	switch {
	case errors.As(err, &ce):
		code, goaway = ce.code, true
		if c.cfg.OnAbuse != nil && ce.abuse != "" {
			c.cfg.OnAbuse(ce.abuse)
		}
		if c.cfg.OnConnError != nil {
			c.cfg.OnConnError(err)
		}
	case err == errPreface:
		code, goaway = http2.ErrCodeProtocol, true
	case err == errIdle, err == errDrained:
		goaway, err = true, nil
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		err = nil
	}
	c.mu.Lock()
	goaway = goaway && !c.broken
	if goaway && (!c.goawaySent || code != http2.ErrCodeNo) {
		reason := ""
		if ce.reason != "" {
			reason = ce.reason
		}
		c.queueGoAwayLocked(c.lastID, code, reason)
	}
	c.killStreamsLocked()
	c.flushLocked()
	c.stopped = true
	c.mu.Unlock()

	if goaway {
		c.linger()
	}
	_ = c.nc.Close()
	c.wg.Wait()
	c.release()
	return err
}

// flushLocked lets the writer write what is queued and waits until it
// stopped.
func (c *Conn) flushLocked() {
	if !c.broken {
		c.wdeadline = time.Time{}
		_ = c.nc.SetWriteDeadline(time.Now().Add(lingerTimeout))
		c.kickWriterLocked()
	}
	for c.writerRunning {
		c.wcond.Wait()
	}
}

// closeWriter is implemented by *net.TCPConn and *tls.Conn.
type closeWriter interface{ CloseWrite() error }

// linger half-closes the connection and reads what the client still sends
// until it closes too or lingerTimeout passes, so the final GOAWAY is read
// by the client instead of being lost to a TCP reset for unread data.
func (c *Conn) linger() {
	if cw, ok := c.nc.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	if nc, ok := c.nc.(interface{ NetConn() net.Conn }); ok {
		if cw, ok := nc.NetConn().(closeWriter); ok {
			_ = cw.CloseWrite()
		}
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	var buf [512]byte
	for {
		if _, err := c.nc.Read(buf[:]); err != nil {
			return
		}
	}
}

// release returns what the connection still holds to the pools once every
// goroutine of it is gone. Streams whose handlers never started (the
// connection ended first: queued, waiting for a slot, or still being
// decoded) are still mapped; started ones were closed by their handlers.
func (c *Conn) release() {
	c.br.release()
	clear(c.toStart)
	c.toStart = nil
	c.hb.s = nil
	c.mu.Lock()
	clear(c.waitStart)
	c.waitStart = nil
	for id, s := range c.streams {
		delete(c.streams, id)
		if !s.started {
			s.release()
		}
	}
	c.releaseWriteBuffersLocked()
	c.mu.Unlock()
}

// runHandler runs the handler of s and ends its use of the stream.
func (c *Conn) runHandler(s *Stream) {
	defer c.handlerDone(s)
	defer func() {
		if r := recover(); r != nil {
			if c.cfg.OnConnError != nil {
				c.cfg.OnConnError(fmt.Errorf("h2: handler of stream %d panicked: %v\n%s", s.id, r, debug.Stack()))
			}
		}
	}()
	c.h.ServeStream(s)
}

// handlerDone closes s if its handler did not, frees its handler slot for
// a waiting stream, and returns s to the pool.
func (c *Conn) handlerDone(s *Stream) {
	s.Close()
	c.mu.Lock()
	c.nHandlers--
	c.active.Add(-1)
	for len(c.waitStart) > 0 && c.nHandlers < int(c.cfg.MaxStreams) {
		next := c.waitStart[0]
		c.waitStart = c.waitStart[1:]
		c.launchLocked(next)
	}
	c.noteIdleLocked()
	if c.idleLocked() && !c.writerRunning {
		c.releaseWriteBuffersLocked()
	}
	c.mu.Unlock()
	s.release()
	c.wg.Done()
}

// launchLocked starts the handler of s.
func (c *Conn) launchLocked(s *Stream) {
	s.started = true
	c.nHandlers++
	c.active.Add(1)
	c.wg.Add(1)
	go s.serve()
}

// startPending starts the handlers of the streams decoded since the input
// was last drained. It runs only when every complete frame already read
// was processed (before a read that may block), so a stream reset in the
// same read (HEADERS then RST_STREAM, the rapid-reset pattern) never
// reaches a handler.
func (c *Conn) startPending() {
	if len(c.toStart) == 0 {
		return
	}
	c.mu.Lock()
	for _, s := range c.toStart {
		if c.dead {
			s.removeLocked()
			s.release()
			continue
		}
		if c.nHandlers >= int(c.cfg.MaxStreams) {
			c.waitStart = append(c.waitStart, s)
			continue
		}
		c.launchLocked(s)
	}
	c.mu.Unlock()
	clear(c.toStart)
	c.toStart = c.toStart[:0]
}

// dropUnstarted removes s, which the client reset before its handler
// started, from the start queues.
func (c *Conn) dropUnstartedLocked(s *Stream) {
	for i, t := range c.toStart {
		if t == s {
			c.toStart = append(c.toStart[:i], c.toStart[i+1:]...)
			return
		}
	}
	for i, t := range c.waitStart {
		if t == s {
			c.waitStart = append(c.waitStart[:i], c.waitStart[i+1:]...)
			return
		}
	}
}

// noteResetLocked remembers that this end reset stream id, so frames the
// client sent before it saw the reset are dropped silently (RFC 9113
// section 5.1, "closed").
func (c *Conn) noteResetLocked(id uint32) {
	c.recentReset[c.recentIdx] = id
	c.recentIdx = (c.recentIdx + 1) % len(c.recentReset)
}

func (c *Conn) recentlyResetLocked(id uint32) bool {
	for _, r := range c.recentReset {
		if r == id {
			return true
		}
	}
	return false
}
