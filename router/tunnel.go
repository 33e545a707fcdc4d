package router

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/router/h1"
)

// errNoTunnel: an upgrade over HTTP/2 (a client never asks for one).
var errNoTunnel = errors.New("no upgrade over HTTP/2")

// tunnel relays an upgraded connection (WebSocket or any other protocol)
// both ways until either side closes or neither sends a byte for the idle
// window (SPEC.md 4.8). The router line is written at the end, with the
// whole session as its service time.
func (c *conn) tunnel(ex *exchange, dc *dynoConn) error {
	resp := &c.sc.resp
	b := h1.AppendStatusLine(c.sc.out[:0], 1, resp.Status, resp.Reason)
	for i := range resp.Fields {
		f := &resp.Fields[i]
		if !f.Hop {
			b = h1.AppendField(b, f.Name, f.Value)
		}
	}
	b = append(b, "Via: "...)
	b = append(b, via11...)
	b = append(b, "\r\nConnection: Upgrade\r\n\r\n"...)
	// Bytes the dyno sent after its head go out right behind it.
	b = append(b, dc.br.Bytes()...)
	early := dc.br.Buffered()
	dc.br.Discard(early)
	c.sc.out = b
	ex.closeAfter = true
	c.rdl.set(c.c, time.Time{})
	if _, err := c.c.Write(b); err != nil {
		return errcodes.New(errcodes.ClientInterrupted, err)
	}
	ex.sent = true
	if n := c.br.Buffered(); n > 0 {
		if _, err := dc.c.Write(c.br.Bytes()); err != nil {
			ex.line.Service = time.Since(ex.sendStart)
			return nil
		}
		c.br.Discard(n)
	}
	a := ex.app
	var lastActive atomic.Int64
	lastActive.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pipe(c.c, dc.c, a.to.Idle, &lastActive)
	}()
	toClient := pipe(dc.c, c.c, a.to.Idle, &lastActive)
	wg.Wait()
	ex.line.Service = time.Since(ex.sendStart)
	ex.line.Bytes = int64(early) + toClient
	return nil
}

// pipe copies from src to dst until src ends or the tunnel was idle for
// idle; then it closes both, which ends the other direction too.
func pipe(src, dst net.Conn, idle time.Duration, lastActive *atomic.Int64) int64 {
	cb := getBuf(copyBufSize)
	defer putBuf(cb)
	buf := *cb
	var total int64
	defer func() {
		src.Close()
		dst.Close()
	}()
	for {
		src.SetReadDeadline(time.Now().Add(idle))
		n, err := src.Read(buf)
		if n > 0 {
			lastActive.Store(time.Now().UnixNano())
			dst.SetWriteDeadline(time.Now().Add(idle))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total
			}
			total += int64(n)
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// The other direction may have been busy: idle means neither.
				if time.Since(time.Unix(0, lastActive.Load())) < idle {
					continue
				}
			}
			return total
		}
	}
}
