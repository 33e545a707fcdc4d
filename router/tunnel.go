package router

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacerouter/spacerouter/router/h1"
)

// tunnel relays an upgraded connection (WebSocket or any other protocol)
// both ways until either side closes or neither sends a byte for the idle
// window (SPEC.md 4.8). The router line is written at the end, with the
// whole session as its service time.
func (cc *clientConn) tunnel(a *app, dc *dynoConn, start, sendStart time.Time) {
	resp := &cc.resp
	b := h1.AppendStatusLine(cc.out[:0], 1, resp.Status, resp.Reason)
	for i := range resp.Fields {
		f := &resp.Fields[i]
		if !f.Hop {
			b = h1.AppendField(b, f.Name, f.Value)
		}
	}
	b = append(b, "Via: "...)
	b = append(b, cc.via...)
	b = append(b, "\r\nConnection: Upgrade\r\n\r\n"...)
	// Bytes the dyno sent after its head go out right behind it.
	b = append(b, dc.br.Bytes()...)
	early := dc.br.Buffered()
	dc.br.Discard(early)
	cc.out = b
	cc.closeAfter = true
	cc.rdl.set(cc.c, time.Time{})
	if _, err := cc.c.Write(b); err != nil {
		cc.clientGone(a, start, sendStart)
		return
	}
	cc.respStarted = true
	if n := cc.br.Buffered(); n > 0 {
		if _, err := dc.c.Write(cc.br.Bytes()); err != nil {
			cc.line.Service = time.Since(sendStart)
			cc.finishLine(start)
			return
		}
		cc.br.Discard(n)
	}
	var lastActive atomic.Int64
	lastActive.Store(time.Now().UnixNano())
	var toClient int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pipe(cc.c, dc.c, a.to.Idle, &lastActive)
	}()
	toClient = pipe(dc.c, cc.c, a.to.Idle, &lastActive)
	wg.Wait()
	cc.line.Service = time.Since(sendStart)
	cc.line.Bytes = int64(early) + toClient
	cc.finishLine(start)
}

// pipe copies from src to dst until src ends or the tunnel was idle for
// idle; then it closes both, which ends the other direction too.
func pipe(src, dst net.Conn, idle time.Duration, lastActive *atomic.Int64) int64 {
	buf := make([]byte, copyBufSize)
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

// isTimeout reports a deadline error.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
