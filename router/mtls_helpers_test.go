package router

// Helpers of the issue 11 tests (SPEC.md 11): a space CA made with
// package spaceca in the test's directory, a router with metrics and an
// observed operational log, and Go clients that present client
// certificates over HTTP/1, HTTP/1 over TLS and HTTP/2 and keep their
// connection open between requests.

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/spaceca"
)

// mtlsSpaceName is the space of the tests' CAs: the trust domain of the
// URI SANs.
const mtlsSpaceName = "my-space"

// spaceCAFiles are the files of one space CA in a test directory.
type spaceCAFiles struct {
	cert, key, state string
}

// newSpaceCAFiles makes a space CA with spaceca.Init under dir/name, its
// state directory dir/state (shared by every CA of the directory, as
// space_ca.state_dir is when a CA is rotated).
func newSpaceCAFiles(t testing.TB, dir, name string) spaceCAFiles {
	t.Helper()
	f := spaceCAFiles{cert: filepath.Join(dir, name+".pem"), key: filepath.Join(dir, name+"-key.pem"), state: filepath.Join(dir, "state")}
	_, err := spaceca.Init(f.cert, f.key, mtlsSpaceName)
	require.NoError(t, err, "spaceca.Init")
	return f
}

// oldSpaceCAFiles writes a space CA by hand that became valid notBefore
// (spaceca.Init dates its CA from now, and a CA does not vouch for a
// client certificate issued before it existed), with the same state
// directory as newSpaceCAFiles.
func oldSpaceCAFiles(t testing.TB, dir, name string, notBefore time.Time) spaceCAFiles {
	t.Helper()
	f := spaceCAFiles{cert: filepath.Join(dir, name+".pem"), key: filepath.Join(dir, name+"-key.pem"), state: filepath.Join(dir, "state")}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "old " + mtlsSpaceName + " space CA"},
		NotBefore: notBefore, NotAfter: notBefore.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(f.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
	return f
}

// open opens the CA as spacerouter ca does (a process of its own); now is
// its clock (nil: time.Now).
func (f spaceCAFiles) open(t testing.TB, now func() time.Time) *spaceca.CA {
	t.Helper()
	ca, err := spaceca.Open(spaceca.Options{CertPath: f.cert, KeyPath: f.key, StateDir: f.state, Space: mtlsSpaceName, Now: now})
	require.NoError(t, err, "spaceca.Open")
	return ca
}

// yaml is the space_ca section naming the CA, with previous entries.
func (f spaceCAFiles) yaml(previous ...string) string {
	s := fmt.Sprintf("space_ca:\n  cert: %q\n  key: %q\n  state_dir: %q\n", f.cert, f.key, f.state)
	if len(previous) > 0 {
		s += "  previous:\n"
		for _, p := range previous {
			s += "    - " + p + "\n"
		}
	}
	return s
}

// issued is a client certificate as a TLS client presents it, with its
// leaf and id.
type issued struct {
	id   string
	leaf *x509.Certificate
	cert tls.Certificate
}

// short is the client_cert= value of the certificate: the first 16 hex
// digits of the leaf's SHA-256.
func (c issued) short() string { return fingerprintHex(c.leaf)[:16] }

// issue issues a client certificate for app with ca and loads it from the
// state directory, as the router sees it.
func issue(t testing.TB, ca *spaceca.CA, app, name string) issued {
	t.Helper()
	cl, err := ca.Issue(app, name)
	require.NoError(t, err, "issuing a certificate for %s", app)
	dir := filepath.Join(ca.StateDir(), "clients", cl.ID)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, spaceca.FileCert), filepath.Join(dir, spaceca.FileKey))
	require.NoError(t, err, "loading the issued certificate %s", cl.ID)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	require.NoError(t, err)
	return issued{id: cl.ID, leaf: leaf, cert: cert}
}

// signByHand signs tmpl (a client certificate) with the CA's key, as no
// spacerouter command would: for the certificates spaceca never issues.
func signByHand(t testing.TB, f spaceCAFiles, tmpl *x509.Certificate) issued {
	t.Helper()
	caPEM, err := os.ReadFile(f.cert)
	require.NoError(t, err)
	b, _ := pem.Decode(caPEM)
	caCert, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	keyPEM, err := os.ReadFile(f.key)
	require.NoError(t, err)
	b, _ = pem.Decode(keyPEM)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), k.(crypto.Signer))
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return issued{leaf: leaf, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}
}

// fingerprintHex is the hex SHA-256 of c's DER, as XFCC's Hash.
func fingerprintHex(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// mtlsRouter is a router under test with its metrics and operational log.
type mtlsRouter struct {
	*testRouter
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	pki  *testPKI // the servers' certificates
}

// startMTLSRouter parses yamlText and starts a router with a registry and
// an observed operational log.
func startMTLSRouter(t testing.TB, pki *testPKI, yamlText string) *mtlsRouter {
	t.Helper()
	return startMTLSRouterClock(t, pki, yamlText, nil)
}

// startMTLSRouterClock is startMTLSRouter with the router's clock
// (Options.Now; nil: time.Now).
func startMTLSRouterClock(t testing.TB, pki *testPKI, yamlText string, now func() time.Time) *mtlsRouter {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yamlText))
	require.NoError(t, err, "config:\n%s", yamlText)
	sink := newLineSink()
	core, logs := observer.New(zap.DebugLevel)
	reg := prometheus.NewRegistry()
	r, err := New(cfg, Options{Lines: logging.NewRouterLog(sink, "heroku[router]", nil), Registry: reg, Logger: zap.New(core), Now: now})
	require.NoError(t, err)
	require.NoError(t, r.Start())
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(2 * time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return &mtlsRouter{testRouter: &testRouter{Router: r, lines: sink, addr: r.HTTPAddr().String()}, reg: reg, logs: logs, pki: pki}
}

// reload parses yamlText and reloads the router with it.
func (mr *mtlsRouter) reload(t testing.TB, yamlText string) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yamlText))
	require.NoError(t, err, "config:\n%s", yamlText)
	require.NoError(t, mr.Reload(cfg), "reload")
}

// metric is metricValue on the router's registry.
func (mr *mtlsRouter) metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	return metricValue(t, mr.reg, name, labels)
}

// line waits up to 5 s for the router line that has path="<path>" and
// returns it.
func (mr *mtlsRouter) line(t testing.TB, path string) string {
	t.Helper()
	want := ` path="` + path + `" `
	deadline := time.Now().Add(5 * time.Second)
	for {
		mr.lines.mu.Lock()
		for _, ln := range mr.lines.lines {
			if strings.Contains(ln, want) {
				mr.lines.mu.Unlock()
				return ln
			}
		}
		n := len(mr.lines.lines)
		mr.lines.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no router line with path=%q within 5s; have %d lines", path, n)
		}
		mr.lines.wait(t, n) // the next line, or fail at its own 5 s
	}
}

// mclient is one client connection to the router in a mode, kept open
// between requests: raw HTTP/1.1 on a socket (plain or TLS) or an HTTP/2
// client connection of x/net.
type mclient struct {
	m    mode
	sni  string
	nc   net.Conn
	br   *bufio.Reader
	h2   *http2.ClientConn
	tlsS tls.ConnectionState
}

// dialOpts says how an mclient connects.
type dialOpts struct {
	sni   string            // the SNI name and the Host of requests
	local string            // the client address ("": any)
	certs []tls.Certificate // the client certificate(s) offered
	// asked, if not nil, is set when the server asks for a certificate.
	asked *bool
}

// dialM connects to the router in mode m.
func (mr *mtlsRouter) dialM(t testing.TB, m mode, o dialOpts) (*mclient, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if o.local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.local)}
	}
	addr := mr.addr
	if m.tls() {
		addr = mr.HTTPSAddr().String()
	}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { raw.Close() })
	c := &mclient{m: m, sni: o.sni, nc: raw}
	if !m.tls() {
		c.br = bufio.NewReader(raw)
		return c, nil
	}
	cfg := &tls.Config{RootCAs: mr.pki.pool, ServerName: o.sni, NextProtos: []string{"http/1.1"}}
	if m == modeH2 {
		cfg.NextProtos = []string{"h2"}
	}
	certs, asked := o.certs, o.asked
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if asked != nil {
			*asked = true
		}
		if len(certs) == 0 {
			return &tls.Certificate{}, nil
		}
		return &certs[0], nil
	}
	tc := tls.Client(raw, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	c.nc, c.tlsS = tc, tc.ConnectionState()
	if m == modeH2 {
		require.Equal(t, "h2", c.tlsS.NegotiatedProtocol)
		c.h2, err = (&http2.Transport{}).NewClientConn(tc)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c.br = bufio.NewReader(tc)
	return c, nil
}

// mustDialM is dialM that fails the test on an error.
func (mr *mtlsRouter) mustDialM(t testing.TB, m mode, o dialOpts) *mclient {
	t.Helper()
	c, err := mr.dialM(t, m, o)
	require.NoError(t, err, "connecting in mode %s to %s", m, o.sni)
	return c
}

// mresult is a response as the client got it.
type mresult struct {
	status int
	reason string // the HTTP/1 reason phrase ("" over HTTP/2)
	header http.Header
	body   string
}

// get sends GET path on the connection, with the header fields given as
// name, value pairs, and reads the response.
func (c *mclient) get(t testing.TB, path string, fields ...string) (mresult, error) {
	t.Helper()
	if c.h2 != nil {
		req, err := http.NewRequest("GET", "https://"+c.sni+path, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(fields); i += 2 {
			req.Header.Add(fields[i], fields[i+1])
		}
		resp, err := c.h2.RoundTrip(req)
		if err != nil {
			return mresult{}, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return mresult{status: resp.StatusCode, header: resp.Header, body: string(body)}, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, c.sni)
	for i := 0; i+1 < len(fields); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", fields[i], fields[i+1])
	}
	b.WriteString("\r\n")
	c.nc.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.nc.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.nc, b.String()); err != nil {
		return mresult{}, err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		return mresult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	reason := strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode)+" ")
	return mresult{status: resp.StatusCode, reason: reason, header: resp.Header, body: string(body)}, err
}

// mustGet is get that fails the test on an error.
func (c *mclient) mustGet(t testing.TB, path string, fields ...string) mresult {
	t.Helper()
	r, err := c.get(t, path, fields...)
	require.NoError(t, err, "GET %s in mode %s", path, c.m)
	return r
}

// dynoHead parses the request head the echo dyno sent back as its body.
func dynoHead(t testing.TB, body string) *http.Request {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(body)))
	require.NoError(t, err, "the dyno's echo of the request head: %q", body)
	return req
}

// spiffeOf is the URI SAN spaceca gives certificate id of app.
func spiffeOf(app, id string) string {
	return (&url.URL{Scheme: "spiffe", Host: mtlsSpaceName, Path: "/apps/" + app + "/clients/" + id}).String()
}

// tlsModes are the modes over TLS.
var tlsModes = []mode{modeH1TLS, modeH2}
