package router

import (
	"sync/atomic"
	"time"
)

// watcher reads the client connection while the router waits for a slow
// dyno, so a client that goes away cancels the dyno request (H27) instead
// of being noticed only when the response is written. Bytes that arrive
// (a pipelined request) stay in the client's buffer.
type watcher struct {
	cc   *clientConn
	gone atomic.Bool
	done chan struct{}
}

// watchClient starts a watcher; the caller must call stop.
func (cc *clientConn) watchClient(dc *dynoConn) *watcher {
	w := &watcher{cc: cc, done: make(chan struct{})}
	cc.cr.mode = readWatch
	cc.rdl.set(cc.c, time.Time{})
	go func() {
		defer close(w.done)
		n, err := cc.br.Fill(cc.br.Buffered() + clientReadBuf)
		if n == 0 && err != nil && !isTimeout(err) {
			w.gone.Store(true)
			dc.c.SetReadDeadline(aLongTimeAgo) // wake the dyno read
		}
	}()
	return w
}

// stop ends the watch and waits for its goroutine.
func (w *watcher) stop() {
	w.cc.rdl.set(w.cc.c, aLongTimeAgo)
	<-w.done
	if err := w.cc.br.Err(); err != nil && isTimeout(err) {
		w.cc.br.ClearErr()
	}
	w.cc.cr.mode = readActive
}
