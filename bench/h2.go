package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"

	"golang.org/x/net/http2"
)

// h2Conn is one HTTP/2 connection shared by Streams clients. It is dialed
// on first use and redialed when the server closes or the connection breaks.
type h2Conn struct {
	t  *target
	tr *http2.Transport

	mu sync.Mutex // guards cc
	cc *http2.ClientConn
}

// get returns a usable connection, dialing one if needed. Other streams of
// the same connection wait while it dials, which is what they would do anyway.
func (c *h2Conn) get(ctx context.Context) (*http2.ClientConn, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil {
		if st := c.cc.State(); !st.Closed && !st.Closing {
			return c.cc, ""
		}
		c.cc.Close()
		c.cc = nil
	}
	conn, kind := c.t.dial(ctx)
	if kind != "" {
		return nil, kind
	}
	cc, err := c.tr.NewClientConn(conn)
	if err != nil {
		conn.Close()
		return nil, classify(err, KindConnect)
	}
	c.cc = cc
	return cc, ""
}

// close closes the connection, if any.
func (c *h2Conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil {
		c.cc.Close()
		c.cc = nil
	}
}

// h2Client is one stream slot on an h2Conn: one request in flight at a time.
type h2Client struct {
	conn *h2Conn
}

func (c *h2Client) do(ctx context.Context) (int, int64, string) {
	t := c.conn.t
	cc, kind := c.conn.get(ctx)
	if kind != "" {
		return 0, 0, kind
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	req := (&http.Request{
		Method:     t.cfg.Method,
		URL:        t.u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     t.h2hdr, // read-only; shared by every stream
		Host:       t.host,
	}).WithContext(ctx)
	if t.cfg.Body != nil {
		req.ContentLength = int64(len(t.cfg.Body))
		req.Body = io.NopCloser(bytes.NewReader(t.cfg.Body))
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(t.cfg.Body)), nil
		}
	}
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return 0, 0, classify(err, KindRead)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, 0, classify(err, KindRead)
	}
	return resp.StatusCode, n, ""
}
