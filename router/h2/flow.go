package h2

import "sync"

// Flow control (RFC 9113 section 5.2 and 6.9). Receive side: the client
// may send StreamWindow bytes a stream and ConnWindow bytes on the
// connection; bytes come back to it in WINDOW_UPDATE frames as the handler
// reads them (a handler that does not read applies back-pressure), or at
// once when they are dropped (padding, a closed stream). Send side: Send
// takes from the client's windows (stream.go).

// signal wakes the goroutine waiting on ch, if any.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// creditLocked returns n consumed bytes of s to both windows. A WINDOW_UPDATE
// goes out when a quarter of the window is owed, so a fast reader sends few
// of them and a window never closes for lack of one.
func (c *Conn) creditLocked(s *Stream, n int64) {
	if !s.remoteEnd {
		s.recvCredit += n
		if s.recvCredit >= max(int64(c.cfg.StreamWindow)/4, 1) {
			c.queueWindowUpdateLocked(s.id, s.recvCredit)
			s.recvWindow += s.recvCredit
			s.recvCredit = 0
		}
	}
	c.creditConnLocked(n)
}

// creditConnLocked returns n bytes to the connection window.
func (c *Conn) creditConnLocked(n int64) {
	if n <= 0 || c.dead {
		return
	}
	c.recvCredit += n
	if c.recvCredit >= max(int64(c.cfg.ConnWindow)/4, 1) {
		c.queueWindowUpdateLocked(0, c.recvCredit)
		c.recvWindow += c.recvCredit
		c.recvCredit = 0
	}
}

// wakeSendersLocked wakes the streams blocked in Send: a window grew, the
// writer took the queue, or the connection died.
func (c *Conn) wakeSendersLocked() {
	if c.sendWaiters == 0 {
		return
	}
	for _, s := range c.streams {
		s.wakeSendLocked()
	}
}

// Body buffer chunks come from pools by size, so a small body does not
// hold 16 KiB and a large one moves in few chunks.
var chunkPools = [...]sync.Pool{
	{New: func() any { return new([1 << 10]byte) }},
	{New: func() any { return new([4 << 10]byte) }},
	{New: func() any { return new([16 << 10]byte) }},
}

func getChunk(want int64) []byte {
	switch {
	case want <= 1<<10:
		return chunkPools[0].Get().(*[1 << 10]byte)[:]
	case want <= 4<<10:
		return chunkPools[1].Get().(*[4 << 10]byte)[:]
	}
	return chunkPools[2].Get().(*[16 << 10]byte)[:]
}

func putChunk(b []byte) {
	switch cap(b) {
	case 1 << 10:
		chunkPools[0].Put((*[1 << 10]byte)(b[:cap(b)]))
	case 4 << 10:
		chunkPools[1].Put((*[4 << 10]byte)(b[:cap(b)]))
	case 16 << 10:
		chunkPools[2].Put((*[16 << 10]byte)(b[:cap(b)]))
	}
}

// recvBuf holds request body bytes the handler has not read: a list of
// pooled chunks, never more than the stream window.
type recvBuf struct {
	chunks [][]byte // chunks[0][r:] then whole later chunks, the last up to w
	r, w   int
	n      int // bytes held
}

// write appends p; rest is how much more body is expected (-1 or less:
// unknown), which sizes a new chunk.
func (b *recvBuf) write(p []byte, rest int64) {
	b.n += len(p)
	for len(p) > 0 {
		if len(b.chunks) == 0 || b.w == len(b.chunks[len(b.chunks)-1]) {
			want := int64(len(p))
			if rest > 0 {
				want += rest
			} else if rest < 0 {
				want = 16 << 10
			}
			b.chunks = append(b.chunks, getChunk(want))
			b.w = 0
		}
		last := b.chunks[len(b.chunks)-1]
		m := copy(last[b.w:], p)
		b.w += m
		p = p[m:]
	}
}

// read moves buffered bytes into p.
func (b *recvBuf) read(p []byte) int {
	total := 0
	for len(p) > 0 && b.n > 0 {
		first := b.chunks[0]
		end := len(first)
		if len(b.chunks) == 1 {
			end = b.w
		}
		m := copy(p, first[b.r:end])
		b.r += m
		b.n -= m
		total += m
		p = p[m:]
		if b.r == end && (len(b.chunks) > 1 || b.n == 0) {
			putChunk(first)
			copy(b.chunks, b.chunks[1:])
			b.chunks[len(b.chunks)-1] = nil
			b.chunks = b.chunks[:len(b.chunks)-1]
			b.r = 0
			if len(b.chunks) == 0 {
				b.w = 0
			}
		}
	}
	return total
}

// reset drops every buffered byte and returns how many there were.
func (b *recvBuf) reset() int {
	n := b.n
	for i, ch := range b.chunks {
		putChunk(ch)
		b.chunks[i] = nil
	}
	b.chunks = b.chunks[:0]
	b.r, b.w, b.n = 0, 0, 0
	return n
}
