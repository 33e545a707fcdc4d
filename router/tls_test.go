package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/config"
	"golang.org/x/net/http2/hpack"
)

// testPKI is a CA and the PEM files of leaves it signed.
type testPKI struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
	dir    string
	serial int64
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "spacerouter test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{ca: ca, caKey: key, pool: pool, dir: t.TempDir(), serial: 1}
}

// leaf writes an ECDSA certificate for names (and its key) and returns the
// YAML of a tls entry naming them.
func (p *testPKI) leaf(t testing.TB, names ...string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return p.writeLeaf(t, key, names)
}

// leafRSA is leaf with an RSA-2048 key.
func (p *testPKI) leafRSA(t testing.TB, names ...string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return p.writeLeaf(t, key, names)
}

func (p *testPKI) writeLeaf(t testing.TB, key crypto.Signer, names []string) string {
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(200 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	base := filepath.Join(p.dir, fmt.Sprintf("leaf%d", p.serial))
	require.NoError(t, os.WriteFile(base+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(base+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
	return fmt.Sprintf("tls: [{cert: %q, key: %q}]", base+".pem", base+"-key.pem")
}

// tlsSpace returns the YAML of two apps with certificates: shop (shop.test,
// *.shop.test) and blog (blog.test), each on its own dyno.
func tlsSpace(t testing.TB, p *testPKI, shopDyno, blogDyno, shopExtra string) string {
	return "listen: {http: \"127.0.0.1:0\", https: \"127.0.0.1:0\"}\n" +
		oneApp(p.leaf(t, "shop.test", "*.shop.test")+"\n"+shopExtra, shopDyno) +
		"  - name: blog\n    domains: [blog.test]\n    " + p.leaf(t, "blog.test") + "\n    dynos: [{name: web.1, address: \"" + blogDyno + "\"}]\n"
}

// echoHeadDyno answers each request with its own head as the body.
func echoHeadDyno(t testing.TB) *rawDyno {
	return startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head := readRequestHead(br)
			if head == "" {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
			var body []byte
			if err == nil && (req.ContentLength > 0 || len(req.TransferEncoding) > 0) {
				req.Body = io.NopCloser(br)
				if req.ContentLength > 0 {
					body, _ = io.ReadAll(io.LimitReader(br, req.ContentLength))
				} else {
					body, _ = io.ReadAll(httpChunked(br))
				}
			}
			out := head + string(body)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(out), out)
		}
	})
}

// httpChunked decodes a chunked body with net/http's reader.
func httpChunked(br *bufio.Reader) io.Reader {
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), br)), nil)
	if err != nil {
		return bytes.NewReader(nil)
	}
	return resp.Body
}

func (tr *testRouter) tlsClient(p *testPKI, sni string, h2 bool) *http.Client {
	cfg := &tls.Config{RootCAs: p.pool, ServerName: sni}
	addr := tr.HTTPSAddr().String()
	dial := func(network, _ string) (net.Conn, error) { return net.Dial("tcp", addr) }
	if h2 {
		return &http.Client{Transport: &http2.Transport{TLSClientConfig: cfg,
			DialTLS: func(network, _ string, c *tls.Config) (net.Conn, error) {
				return tls.Dial("tcp", addr, c)
			}}, Timeout: 5 * time.Second}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, Dial: dial, ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}, Timeout: 5 * time.Second}
}

func TestTLSHTTP1(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := echoHeadDyno(t), okDyno(t, "blog")
	tr := startRouter(t, tlsSpace(t, p, shop.addr(), blog.addr(), ""))
	c := tr.tlsClient(p, "shop.test", false)
	resp, err := c.Get("https://shop.test/a?b=1")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "HTTP/1.1", resp.Proto)
	assert.Contains(t, string(body), "X-Forwarded-Proto: https\r\n")
	_, port, _ := net.SplitHostPort(tr.HTTPSAddr().String())
	assert.Contains(t, string(body), "X-Forwarded-Port: "+port+"\r\n")
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, " protocol=http1.1 tls=true tls_version=tls1.3\n")
	assert.Contains(t, line, `path="/a?b=1" host=shop.test`)
}

func TestTLSMisdirected(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := okDyno(t, "shop"), okDyno(t, "blog")
	tr := startRouter(t, tlsSpace(t, p, shop.addr(), blog.addr(), ""))
	conn, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{RootCAs: p.pool, ServerName: "shop.test", NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: blog.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.Equal(t, 421, resp.StatusCode, "SNI shop.test with Host blog.test")
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, `at=error code=H31 desc="Misdirected Request" method=GET path="/" host=blog.test`)
	assert.Contains(t, line, " dyno= connect= service= status=421 ")

	// Another domain of the same app is fine.
	conn2, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{RootCAs: p.pool, ServerName: "www.shop.test", NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	defer conn2.Close()
	fmt.Fprintf(conn2, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(conn2), nil)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode, "SNI www.shop.test with Host shop.test: one app")
}

func TestTLSHTTP10WithoutHostUsesSNI(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := echoHeadDyno(t), okDyno(t, "blog")
	tr := startRouter(t, tlsSpace(t, p, shop.addr(), blog.addr(), ""))
	conn, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{RootCAs: p.pool, ServerName: "shop.test", NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "GET /old HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(body), "Host: shop.test\r\n", "the dyno gets the SNI name as Host")
	assert.Contains(t, tr.lines.wait(t, 0), "host=shop.test")
}

func TestTLSUnknownSNI(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := okDyno(t, "shop"), okDyno(t, "blog")
	tr := startRouter(t, tlsSpace(t, p, shop.addr(), blog.addr(), ""))
	for _, sni := range []string{"nope.test", ""} {
		_, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: sni})
		require.Error(t, err, "SNI %q", sni)
		assert.Contains(t, err.Error(), "unrecognized name", "SNI %q: alert unrecognized_name", sni)
	}
}

func TestH2(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := echoHeadDyno(t), okDyno(t, "blog")
	tr := startRouter(t, tlsSpace(t, p, shop.addr(), blog.addr(), ""))
	c := tr.tlsClient(p, "shop.test", true)
	resp, err := c.Get("https://shop.test/h2?x=1")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "HTTP/2.0", resp.Proto)
	assert.Equal(t, "2.0 spacerouter", resp.Header.Get("Via"))
	assert.True(t, strings.HasPrefix(string(body), "GET /h2?x=1 HTTP/1.1\r\n"), "the dyno gets HTTP/1.1: %q", body)
	assert.Contains(t, string(body), "Via: 2.0 spacerouter\r\n")
	assert.Contains(t, string(body), "Host: shop.test\r\n", ":authority routes like Host")
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, `at=info method=GET path="/h2?x=1" host=shop.test`)
	assert.Contains(t, line, " protocol=http2.0 tls=true tls_version=tls1.3\n")

	// A streamed body of unknown length reaches the dyno whole.
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 10; i++ {
			fmt.Fprintf(pw, "part%d;", i)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "https://shop.test/up", pr)
	resp, err = c.Do(req)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.True(t, strings.HasSuffix(string(body), "part0;part1;part2;part3;part4;part5;part6;part7;part8;part9;"), "%q", body)
}

func TestH2Disabled(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := okDyno(t, "shop"), okDyno(t, "blog")
	tr := startRouter(t, tlsSpace(t, p, shop.addr(), blog.addr(), "features: [spaces-tls-modern, http-disable-http2]"))
	conn, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{RootCAs: p.pool, ServerName: "shop.test", NextProtos: []string{"h2", "http/1.1"}})
	require.NoError(t, err)
	defer conn.Close()
	assert.Equal(t, "http/1.1", conn.ConnectionState().NegotiatedProtocol)
	conn2, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{RootCAs: p.pool, ServerName: "blog.test", NextProtos: []string{"h2", "http/1.1"}})
	require.NoError(t, err)
	defer conn2.Close()
	assert.Equal(t, "h2", conn2.ConnectionState().NegotiatedProtocol, "HTTP/2 is on by default")
}

func TestH2Errors(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		readRequestHead(br)
		// H13: close without a response.
	}), okDyno(t, "blog")
	tr := startRouter(t, tlsSpace(t, p, shop.addr(), blog.addr(), ""))
	c := tr.tlsClient(p, "shop.test", true)
	resp, err := c.Get("https://shop.test/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode)
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, `code=H13 desc="Connection closed without response"`)
	assert.Contains(t, line, " protocol=http2.0 tls=true")

	// Misdirected: :authority of another app.
	req, _ := http.NewRequest("GET", "https://shop.test/", nil)
	req.Host = "blog.test"
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 421, resp.StatusCode)
	assert.Contains(t, tr.lines.wait(t, 1), `code=H31`)
}

// rawH2Request sends one request as raw HTTP/2 frames (so fields a client
// library would mend go out as given) and returns the response status.
func rawH2Request(t testing.TB, addr string, p *testPKI, sni string, fields [][2]string, body string) int {
	t.Helper()
	status, rst := rawH2Exchange(t, addr, p, sni, fields, body)
	if rst != nil {
		t.Fatalf("stream reset (%v) instead of a response", *rst)
	}
	return status
}

// rawH2Exchange is rawH2Request that also reports a stream reset instead
// of a response (rst non-nil, status 0).
func rawH2Exchange(t testing.TB, addr string, p *testPKI, sni string, fields [][2]string, body string) (status int, rst *http2.ErrCode) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.pool, ServerName: sni, NextProtos: []string{"h2"}})
	require.NoError(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(conn, http2.ClientPreface)
	require.NoError(t, err)
	fr := http2.NewFramer(conn, conn)
	require.NoError(t, fr.WriteSettings())
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range fields {
		require.NoError(t, enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}))
	}
	require.NoError(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: body == ""}))
	if body != "" {
		require.NoError(t, fr.WriteData(1, true, []byte(body)))
	}
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		require.NoError(t, err, "reading the response frames")
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			hf, err := dec.DecodeFull(f.HeaderBlockFragment())
			require.NoError(t, err)
			for _, h := range hf {
				if h.Name == ":status" {
					n, _ := strconv.Atoi(h.Value)
					return n, nil
				}
			}
		case *http2.RSTStreamFrame:
			code := f.ErrCode
			return 0, &code
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY (%v) instead of a response", f.ErrCode)
		}
	}
}

// TestH2MalformedRequest: a malformed HTTP/2 request (RFC 9113 section
// 8.1.1) is reset with PROTOCOL_ERROR and gets an H26 line with no status
// (SPEC.md 4), not a silent reset.
func TestH2MalformedRequest(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := okDyno(t, "shop"), okDyno(t, "blog")
	tr := startRouter(t, tlsSpace(t, p, shop.addr(), blog.addr(), ""))
	status, rst := rawH2Exchange(t, tr.HTTPSAddr().String(), p, "shop.test", [][2]string{
		{":method", "POST"}, {":scheme", "https"}, {":authority", "shop.test"}, {":path", "/dup"},
		{"content-length", "5"}, {"content-length", "5"},
	}, "hello")
	require.NotNil(t, rst, "two content-length fields over HTTP/2 got status %d, want a reset", status)
	assert.Equal(t, http2.ErrCodeProtocol, *rst)
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, `at=error code=H26 desc="Request Error" cause="bad header" method=POST path="/dup"`)
	assert.Contains(t, line, " status= bytes= protocol=http2.0 ")
	assert.Equal(t, 0, shop.accepted(), "nothing of a rejected request reaches a dyno")
}

// TestTLSStrictTLS11: the strict profile serves TLS 1.1, and the router
// line says so.
func TestTLSStrictTLS11(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := okDyno(t, "shop"), okDyno(t, "blog")
	// Strict's TLS 1.1 suites are ECDHE_RSA ones: the app needs an RSA certificate.
	yaml := "listen: {http: \"127.0.0.1:0\", https: \"127.0.0.1:0\"}\n" +
		oneApp(p.leafRSA(t, "shop.test")+"\nfeatures: [spaces-strict-tls]", shop.addr()) +
		"  - name: blog\n    domains: [blog.test]\n    " + p.leaf(t, "blog.test") + "\n    dynos: [{name: web.1, address: \"" + blog.addr() + "\"}]\n"
	tr := startRouter(t, yaml)
	conn, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{RootCAs: p.pool, ServerName: "shop.test",
		MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}})
	require.NoError(t, err, "TLS 1.1 with the strict profile")
	defer conn.Close()
	fmt.Fprintf(conn, "GET /old HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, tr.lines.wait(t, 0), " protocol=http1.1 tls=true tls_version=tls1.1\n")
}

// TestReloadRereadsCertificates: a reload reads certificates again, so a
// renewed certificate is served to new handshakes.
func TestReloadRereadsCertificates(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := okDyno(t, "shop"), okDyno(t, "blog")
	text := tlsSpace(t, p, shop.addr(), blog.addr(), "")
	tr := startRouter(t, text)
	serial := func() int64 {
		conn, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{RootCAs: p.pool, ServerName: "shop.test"})
		require.NoError(t, err)
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	before := serial()
	renewed := tlsSpace(t, p, shop.addr(), blog.addr(), "") // new leaves, new serials
	cfg, err := config.Parse("test.yaml", []byte(renewed))
	require.NoError(t, err)
	require.NoError(t, tr.Reload(cfg))
	after := serial()
	assert.NotEqual(t, before, after, "the renewed certificate is served after the reload")
}

// bufConn holds what crypto/tls writes, while hold is set, until flush
// sends it in one write (or two, split at a byte offset).
type bufConn struct {
	net.Conn
	hold bool
	buf  []byte
}

func (b *bufConn) Write(p []byte) (int, error) {
	if !b.hold {
		return b.Conn.Write(p)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *bufConn) flush(t *testing.T, split int) {
	t.Helper()
	out := b.buf
	b.buf = nil
	if split > 0 {
		_, err := b.Conn.Write(out[:split])
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond) // the router waits with a part record
		out = out[split:]
	}
	_, err := b.Conn.Write(out)
	require.NoError(t, err)
}

// TestTLSIdleWaitRecords: an idle TLS connection waits on the socket, at a
// shallow depth, only when crypto/tls holds no complete record
// (tlswait.go): pipelined requests whose records arrived in one segment
// are all answered, as are two requests in one record larger than the
// router's read buffer, and a request whose record arrives in two parts,
// split in its header or in its body.
func TestTLSIdleWaitRecords(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := echoHeadDyno(t), okDyno(t, "blog")
	tr := startRouter(t, tlsSpace(t, p, shop.addr(), blog.addr(), ""))
	raw, err := net.Dial("tcp", tr.HTTPSAddr().String())
	require.NoError(t, err)
	defer raw.Close()
	bc := &bufConn{Conn: raw}
	conn := tls.Client(bc, &tls.Config{RootCAs: p.pool, ServerName: "shop.test", NextProtos: []string{"http/1.1"}})
	require.NoError(t, conn.Handshake())
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	answer := func(path string) {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err, path)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, path)
		assert.Contains(t, string(body), "GET "+path+" HTTP/1.1\r\n")
	}
	bc.hold = true
	// Three requests, a record each, in one write: the router reads the
	// first with the others complete in crypto/tls's buffer.
	for _, path := range []string{"/a", "/b", "/c"} {
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: shop.test\r\n\r\n", path)
	}
	bc.flush(t, 0)
	for _, path := range []string{"/a", "/b", "/c"} {
		answer(path)
	}
	// Two requests in one record larger than the router's read buffer:
	// the second's bytes are still in crypto/tls when the first is done.
	body := strings.Repeat("x", 3000)
	fmt.Fprintf(conn, "POST /big HTTP/1.1\r\nHost: shop.test\r\nContent-Length: %d\r\n\r\n%sGET /d HTTP/1.1\r\nHost: shop.test\r\n\r\n", len(body), body)
	bc.flush(t, 0)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(got), body)
	answer("/d")
	// One record, sent in two parts: split in the record header, then in
	// the body.
	for i, split := range []int{3, 20} {
		path := fmt.Sprintf("/split%d", i)
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: shop.test\r\n\r\n", path)
		bc.flush(t, split)
		answer(path)
	}
	// The end of the connection ends the wait.
	bc.hold = false
	require.NoError(t, conn.CloseWrite())
	_, err = br.ReadByte()
	assert.Equal(t, io.EOF, err, "the router closes after the client's close_notify")
}

// TestTLSIdleHop: an idle TLS connection waits on a fresh goroutine once
// idle for idleHopAfter (a 2 KiB stack, tlswait.go), then serves its next
// request as before; the hop keeps the keep-alive window (the connection
// ends when it runs out, counted from the last request, not from the
// hop), and the drain still closes a hopped connection at once.
func TestTLSIdleHop(t *testing.T) {
	defer func(d time.Duration) { idleHopAfter = d }(idleHopAfter)
	idleHopAfter = 200 * time.Millisecond
	p := newTestPKI(t)
	shop, blog := echoHeadDyno(t), okDyno(t, "blog")
	tr := startRouter(t, "timeouts: {keepalive: 600ms}\n"+tlsSpace(t, p, shop.addr(), blog.addr(), ""))
	dial := func() (*tls.Conn, *bufio.Reader) {
		conn, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{RootCAs: p.pool, ServerName: "shop.test", NextProtos: []string{"http/1.1"}})
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		return conn, bufio.NewReader(conn)
	}
	get := func(conn *tls.Conn, br *bufio.Reader, path string) {
		t.Helper()
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: shop.test\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err, path)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, path)
		assert.Contains(t, string(body), "GET "+path+" HTTP/1.1\r\n")
	}
	hopped := func() int {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "router.(*conn).resume(")
	}
	conn, br := dial()
	get(conn, br, "/a")
	require.Eventually(t, func() bool { return hopped() == 1 }, 5*time.Second, 5*time.Millisecond,
		"the idle connection waits on a goroutine of its own")
	get(conn, br, "/b")
	// The keep-alive window after /b: the hop does not extend it.
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := br.ReadByte()
	idle := time.Since(start)
	assert.Equal(t, io.EOF, err)
	assert.True(t, idle >= 550*time.Millisecond && idle < 780*time.Millisecond,
		"keepalive: 600ms: the connection ended after %v idle", idle)

	// The drain closes a hopped connection at once, not when its
	// keep-alive window ends.
	conn2, br2 := dial()
	get(conn2, br2, "/c")
	require.Eventually(t, func() bool { return hopped() == 1 }, 5*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start = time.Now()
	require.NoError(t, tr.Shutdown(ctx))
	assert.Less(t, time.Since(start), 300*time.Millisecond, "the drain waited for the keep-alive window")
	_, err = br2.ReadByte()
	assert.Equal(t, io.EOF, err)
}
