package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/http2"
)

// target is what every connection of a run shares: the parsed URL, the
// dial address, the TLS config and the prebuilt request.
type target struct {
	cfg    Config
	u      *url.URL
	addr   string      // host:port to dial
	host   string      // Host header / :authority
	tls    *tls.Config // nil for http://
	h1req  []byte      // the whole HTTP/1.1 request, built once
	head   bool        // the response to a HEAD has no body
	h2hdr  http.Header // headers for HTTP/2 requests, without Host
	dialer net.Dialer
}

// newTarget parses cfg (already defaulted and validated).
func newTarget(cfg Config) (*target, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err
	}
	t := &target{cfg: cfg, u: u, host: u.Host, head: cfg.Method == http.MethodHead}
	if h := cfg.Headers.Get("Host"); h != "" {
		t.host = h
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	t.dialer.Timeout = cfg.Timeout
	if cfg.Local != "" {
		ip := net.ParseIP(cfg.Local)
		if ip == nil {
			return nil, fmt.Errorf("-local %q: not an IP address", cfg.Local)
		}
		t.dialer.LocalAddr = &net.TCPAddr{IP: ip}
	}
	if u.Scheme == "https" {
		t.tls = &tls.Config{
			ServerName:         u.Hostname(),
			InsecureSkipVerify: cfg.Insecure,
			NextProtos:         []string{"http/1.1"},
		}
		if cfg.SNI != "" {
			t.tls.ServerName = cfg.SNI
		}
		if cfg.HTTP2 {
			t.tls.NextProtos = []string{http2.NextProtoTLS}
		}
		if cfg.ClientCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.ClientCert, cfg.ClientKey)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			// Presented whenever the server asks, as curl --cert does,
			// whatever CAs the request names.
			t.tls.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		}
	}
	t.h1req = buildRequest(cfg, u, t.host)
	t.h2hdr = cfg.Headers.Clone()
	if t.h2hdr == nil {
		t.h2hdr = http.Header{}
	}
	t.h2hdr.Del("Host")
	if t.h2hdr.Get("User-Agent") == "" {
		t.h2hdr.Set("User-Agent", userAgent)
	}
	return t, nil
}

// userAgent is sent unless Config.Headers sets one.
const userAgent = "spacebench"

// buildRequest writes the HTTP/1.1 request once; every request of the run
// sends these same bytes.
func buildRequest(cfg Config, u *url.URL, host string) []byte {
	b := make([]byte, 0, 256+len(cfg.Body))
	b = append(b, cfg.Method...)
	b = append(b, ' ')
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	if cfg.Headers.Get("User-Agent") == "" {
		b = append(b, "User-Agent: "+userAgent+"\r\n"...)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range cfg.Headers {
			if !yield(k) {
				return
			}
		}
	}) {
		if http.CanonicalHeaderKey(k) == "Host" || http.CanonicalHeaderKey(k) == "Content-Length" {
			continue
		}
		for _, v := range cfg.Headers[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	switch cfg.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		cfg.Body = append([]byte{}, cfg.Body...) // force Content-Length even when empty
	}
	if cfg.Body != nil {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(cfg.Body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, cfg.Body...)
}

// clients builds one client per concurrent request: Conns HTTP/1.1
// connections, or Conns HTTP/2 connections with Streams clients each.
// closeAll closes every connection. For HTTP/2 it first checks that the
// target speaks it (h2Check).
func (t *target) clients(ctx context.Context) (cs []client, closeAll func(), err error) {
	if !t.cfg.HTTP2 {
		h1 := make([]*h1Client, t.cfg.Conns)
		for i := range h1 {
			h1[i] = &h1Client{t: t}
			cs = append(cs, h1[i])
		}
		return cs, func() {
			for _, c := range h1 {
				c.reset()
			}
		}, nil
	}
	tr := &http2.Transport{AllowHTTP: true, DisableCompression: true}
	if err := t.h2Check(ctx); err != nil {
		return nil, nil, err
	}
	conns := make([]*h2Conn, t.cfg.Conns)
	for i := range conns {
		conns[i] = &h2Conn{t: t, tr: tr}
		for range t.cfg.Streams {
			cs = append(cs, &h2Client{conn: conns[i]})
		}
	}
	return cs, func() {
		for _, c := range conns {
			c.close()
		}
	}, nil
}

// dial opens a connection, TLS when the URL is https. Its error is a
// *requestError whose kind tells a TCP failure from a handshake failure.
func (t *target) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	raw, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, &requestError{KindConnect, err}
	}
	if t.tls == nil {
		return raw, nil
	}
	tc := tls.Client(raw, t.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &requestError{KindTLS, err}
	}
	if p := tc.ConnectionState().NegotiatedProtocol; t.cfg.HTTP2 && p != http2.NextProtoTLS {
		tc.Close()
		return nil, &requestError{KindTLS, fmt.Errorf("%w: ALPN chose %q", errNotH2, p)}
	}
	return tc, nil
}

// errMalformed marks a response that is not valid HTTP/1.1.
var errMalformed = errors.New("malformed response")

// classify names the kind of a transport error; fallback is used when
// nothing more specific fits (KindRead or KindWrite, by where it happened).
func classify(err error, fallback string) string {
	if errors.Is(err, errMalformed) {
		return KindProtocol
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return KindTimeout
	}
	if _, ok := errors.AsType[http2.StreamError](err); ok {
		return KindReset
	}
	for _, e := range []error{syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNABORTED, io.EOF, io.ErrUnexpectedEOF, net.ErrClosed} {
		if errors.Is(err, e) {
			return KindReset
		}
	}
	return fallback
}

// aLongTimeAgo is a deadline in the past: setting it aborts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)
