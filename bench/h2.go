package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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
// Its error is a *requestError.
func (c *h2Conn) get(ctx context.Context) (*http2.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil {
		if st := c.cc.State(); !st.Closed && !st.Closing {
			return c.cc, nil
		}
		c.cc.Close()
		c.cc = nil
	}
	conn, err := c.t.dial(ctx)
	if err != nil {
		return nil, err
	}
	cc, err := c.tr.NewClientConn(conn)
	if err != nil {
		conn.Close()
		return nil, &requestError{classify(err, KindConnect), err}
	}
	c.cc = cc
	return cc, nil
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

func (c *h2Client) do(ctx context.Context) (int, int64, error) {
	t := c.conn.t
	cc, err := c.conn.get(ctx)
	if err != nil {
		return 0, 0, err
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
		return 0, 0, &requestError{classify(err, KindRead), err}
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, 0, &requestError{classify(err, KindRead), err}
	}
	return resp.StatusCode, n, nil
}

// errNotH2 marks a target that does not speak HTTP/2 at all: -h2 against it
// would only count one error per request, so the run stops with the reason.
var errNotH2 = errors.New("the target does not speak HTTP/2")

// h2Check opens one connection before the load starts and sees whether the
// target speaks HTTP/2: over TLS, it must choose h2 by ALPN; over http://,
// it must answer the connection preface with a SETTINGS frame. No request
// is sent. A target that cannot be reached, or whose TLS handshake fails,
// is left to the run, which counts those errors as for HTTP/1.1; a target
// that answers but not in HTTP/2 fails the run with errNotH2 and the
// reason.
func (t *target) h2Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	raw, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil
	}
	defer raw.Close()
	if t.tls != nil {
		tc := tls.Client(raw, t.tls)
		err := tc.HandshakeContext(ctx)
		if err != nil && strings.Contains(err.Error(), "no application protocol") {
			return fmt.Errorf("%w: %s refused h2 in the TLS handshake (%v); leave out -h2 to use HTTP/1.1", errNotH2, t.addr, err)
		}
		if err != nil {
			return nil
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
			if p == "" {
				p = "none"
			}
			return fmt.Errorf("%w: %s did not choose h2 in the TLS handshake (ALPN: %s); leave out -h2 to use HTTP/1.1", errNotH2, t.addr, p)
		}
		return nil
	}
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	fr := http2.NewFramer(raw, raw)
	if _, err := io.WriteString(raw, http2.ClientPreface); err != nil {
		return nil
	}
	if err := fr.WriteSettings(); err != nil {
		return nil
	}
	f, err := fr.ReadFrame()
	if _, ok := f.(*http2.SettingsFrame); ok && err == nil {
		return nil
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return nil // a slow target is the run's to measure
	}
	return fmt.Errorf("%w: %s did not answer the HTTP/2 connection preface with SETTINGS; over http://, -h2 needs a server that speaks h2c with prior knowledge", errNotH2, t.addr)
}
