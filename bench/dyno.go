package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// DynoConfig shapes the answers of a synthetic dyno.
type DynoConfig struct {
	// BodySize is the size in bytes of every response body. Zero sends an
	// empty body.
	BodySize int
	// Latency is how long the dyno waits after reading a request before it
	// answers. Zero answers at once.
	Latency time.Duration
	// Chunked sends the body with Transfer-Encoding: chunked, in several
	// separate writes (a streaming dyno); false sends a Content-Length and
	// the whole response in one write.
	Chunked bool
}

// dynoChunks is how many writes a chunked body is split into (at most).
const dynoChunks = 4

// Dyno is a synthetic HTTP/1.1 dyno for self-contained benchmarks: a raw
// net.Listener server that keeps connections alive and answers every
// request, whatever its method or path, with 200 and a body of
// DynoConfig.BodySize bytes. It is written on net directly, not net/http,
// so its own cost stays small next to the router's.
type Dyno struct {
	cfg  DynoConfig
	ln   net.Listener
	resp []byte   // the whole response when not chunked
	head []byte   // the response head when chunked
	body [][]byte // the encoded chunks, last one included, when chunked
	done chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool
}

// StartDyno starts a synthetic dyno on a free 127.0.0.1 port. Close stops it.
func StartDyno(cfg DynoConfig) (*Dyno, error) {
	if cfg.BodySize < 0 {
		return nil, fmt.Errorf("body size: %d is negative", cfg.BodySize)
	}
	if cfg.Latency < 0 {
		return nil, fmt.Errorf("latency: %v is negative", cfg.Latency)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for a dyno: %w", err)
	}
	d := &Dyno{cfg: cfg, ln: ln, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	d.buildResponse()
	d.wg.Go(d.accept)
	return d, nil
}

// buildResponse prepares the bytes of the one answer this dyno gives.
func (d *Dyno) buildResponse() {
	body := bytes.Repeat([]byte("x"), d.cfg.BodySize)
	if !d.cfg.Chunked {
		d.resp = fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", len(body))
		d.resp = append(d.resp, body...)
		return
	}
	d.head = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
	size := max((len(body)+dynoChunks-1)/dynoChunks, 1)
	for len(body) > 0 {
		n := min(size, len(body))
		c := strconv.AppendInt(nil, int64(n), 16)
		c = append(c, "\r\n"...)
		c = append(c, body[:n]...)
		d.body = append(d.body, append(c, "\r\n"...))
		body = body[n:]
	}
	d.body = append(d.body, []byte("0\r\n\r\n"))
}

// Addr returns the dyno's host:port.
func (d *Dyno) Addr() string { return d.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for the
// connection goroutines to end.
func (d *Dyno) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.done)
	err := d.ln.Close()
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
	return err
}

// accept runs until the listener closes.
func (d *Dyno) accept() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				continue
			}
			return // closed
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			c.Close()
			return
		}
		d.conns[c] = struct{}{}
		d.wg.Go(func() { d.serve(c) })
		d.mu.Unlock()
	}
}

// serve answers the requests of one connection until it closes, breaks,
// or asks to close.
func (d *Dyno) serve(c net.Conn) {
	defer func() {
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReaderSize(c, 16<<10)
	var timer *time.Timer
	for {
		keep, err := readRequest(br)
		if err != nil {
			return
		}
		if d.cfg.Latency > 0 {
			if timer == nil {
				timer = time.NewTimer(d.cfg.Latency)
			} else {
				timer.Reset(d.cfg.Latency)
			}
			select {
			case <-timer.C:
			case <-d.done:
				return
			}
		}
		if err := d.respond(c); err != nil || !keep {
			return
		}
	}
}

// respond writes the answer: one write, or the head and each chunk apart.
func (d *Dyno) respond(w io.Writer) error {
	if !d.cfg.Chunked {
		_, err := w.Write(d.resp)
		return err
	}
	if _, err := w.Write(d.head); err != nil {
		return err
	}
	for _, c := range d.body {
		if _, err := w.Write(c); err != nil {
			return err
		}
	}
	return nil
}

// readRequest reads one request head and discards its body. It reports
// whether the connection may carry another request.
func readRequest(br *bufio.Reader) (keep bool, err error) {
	line, err := readLine(br)
	for err == nil && len(line) == 0 { // RFC 9112 section 2.2: skip leading empty lines
		line, err = readLine(br)
	}
	if err != nil {
		return false, err
	}
	keep = bytes.HasSuffix(line, []byte(" HTTP/1.1"))
	var length int64
	var chunked bool
	for {
		line, err := readLine(br)
		if err != nil {
			return false, err
		}
		if len(line) == 0 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(v), 10, 64); err != nil || length < 0 {
				return false, fmt.Errorf("%w: Content-Length %q", errMalformed, v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = hasToken(v, "chunked")
		case bytes.EqualFold(k, []byte("Connection")):
			if hasToken(v, "close") {
				keep = false
			} else if hasToken(v, "keep-alive") {
				keep = true
			}
		}
	}
	if chunked {
		_, err = readChunked(br)
	} else {
		_, err = discard(br, length)
	}
	return keep, err
}

// Dynos is a set of synthetic dynos started together.
type Dynos []*Dyno

// StartDynos starts n synthetic dynos with the same cfg. On error, the ones
// already started are closed.
func StartDynos(n int, cfg DynoConfig) (Dynos, error) {
	if n < 1 {
		return nil, fmt.Errorf("dynos: %d is less than 1", n)
	}
	var ds Dynos
	for range n {
		d, err := StartDyno(cfg)
		if err != nil {
			ds.Close()
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// Addrs returns the host:port of every dyno.
func (ds Dynos) Addrs() []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Addr()
	}
	return out
}

// Close closes every dyno.
func (ds Dynos) Close() error {
	var errs []error
	for _, d := range ds {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}
