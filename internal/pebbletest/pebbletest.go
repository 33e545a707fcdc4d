// Package pebbletest runs Let's Encrypt's Pebble ACME server for tests
// (the acme package's and the router's): built once per test binary from
// the module tools/pebble (its own go.mod, so the router's go.mod stays
// clean), run per test with its own config, its own TLS certificate for
// the ACME API, and a DNS server of the test's that answers A 127.0.0.1
// (or what the test says) for every name, so its TLS-ALPN-01 validations
// reach the test's listener on loopback. Tests that use it are skipped
// under -short.
package pebbletest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// pebbleModule returns the directory of the tools module that pins
// Pebble: tools/pebble at the root of this module, found from this file.
func pebbleModule() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "tools", "pebble")
}

var pebbleBuild struct {
	once sync.Once
	dir  string // temporary directory of the binary, removed by TestMain
	bin  string
	err  error
}

// Main runs the tests of m and removes the Pebble binary built for them;
// call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if pebbleBuild.dir != "" {
		os.RemoveAll(pebbleBuild.dir)
	}
	os.Exit(code)
}

// Binary builds Pebble once per test binary (go build in the tools
// module; a cache hit after the first run) and returns its path. It skips
// the test under -short.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the Pebble ACME tests are skipped under -short")
	}
	b := &pebbleBuild
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "spacerouter-pebble-")
		if b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "pebble")
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		cmd := exec.Command(goBin, "build", "-o", b.bin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
		cmd.Dir = pebbleModule()
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build of Pebble in %s: %w\n%s", cmd.Dir, err, out)
		}
	})
	require.NoError(t, b.err)
	return b.bin
}

// DNS is a DNS server over TCP (Pebble's VA asks over TCP) answering A
// 127.0.0.1 for every name unless set otherwise, and AAAA with nothing.
type DNS struct {
	ln net.Listener
	// mu guards a and held.
	mu   sync.Mutex
	a    map[string]netip.Addr    // by name, without the trailing dot
	held map[string]chan struct{} // names whose answers wait until the channel is closed
}

// StartDNS starts a DNS server on loopback until the test ends.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d := &DNS{ln: ln, a: map[string]netip.Addr{}, held: map[string]chan struct{}{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { d.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		d.releaseAll()
		wg.Wait()
	})
	return d
}

// Hold makes the answers for name wait until release is called (or the
// test ends): an ACME order for name stays in progress, its validation
// waiting for DNS, for as long as a test needs to look at it.
func (d *DNS) Hold(name string) (release func()) {
	ch := make(chan struct{})
	d.mu.Lock()
	d.held[name] = ch
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			if d.held[name] == ch {
				delete(d.held, name)
			}
			d.mu.Unlock()
			close(ch)
		})
	}
}

// releaseAll lets every held answer go.
func (d *DNS) releaseAll() {
	d.mu.Lock()
	held := d.held
	d.held = map[string]chan struct{}{}
	d.mu.Unlock()
	for _, ch := range held {
		close(ch)
	}
}

// Addr is the server's address.
func (d *DNS) Addr() string { return d.ln.Addr().String() }

// SetA makes the server answer name with addr.
func (d *DNS) SetA(name string, addr netip.Addr) {
	d.mu.Lock()
	d.a[name] = addr
	d.mu.Unlock()
}

// serve answers the queries of one TCP connection (RFC 7766: each message
// after its 2-byte length).
func (d *DNS) serve(c net.Conn) {
	defer c.Close()
	for {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var n uint16
		if err := binary.Read(c, binary.BigEndian, &n); err != nil {
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp, err := d.answer(msg)
		if err != nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

func (d *DNS) answer(msg []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	name := q.Name.String()
	name = name[:len(name)-1]
	d.mu.Lock()
	hold := d.held[name]
	d.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if q.Type == dnsmessage.TypeA {
		d.mu.Lock()
		addr, ok := d.a[name]
		d.mu.Unlock()
		if !ok {
			addr = netip.MustParseAddr("127.0.0.1")
		}
		hdr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 1}
		if err := b.AResource(hdr, dnsmessage.AResource{A: addr.As4()}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// Pebble is one running Pebble.
type Pebble struct {
	Directory string         // the ACME directory URL
	RootsFile string         // PEM: the API's certificate and Pebble's root (acme.trusted_roots)
	RootPEM   []byte         // Pebble's issuing root, PEM
	Root      *x509.CertPool // Pebble's issuing root only
	apiRoots  *x509.CertPool // the API's certificate only
	cmd       *exec.Cmd
	stopOnce  sync.Once
	exited    chan struct{}
	output    *syncBuffer
}

// Options are the settings a test gives its Pebble.
type Options struct {
	TLSPort  int           // where TLS-ALPN-01 validations connect
	Validity time.Duration // of issued certificates; 0: Pebble's 90 days
}

// Start runs Pebble for one test, with the test's DNS server, and waits
// until its directory answers. It is stopped at the test's end, and its
// output logged if the test failed.
func Start(t testing.TB, dns *DNS, o Options) *Pebble {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	apiCert, apiKey, apiPool := apiCertificate(t)
	certFile, keyFile := filepath.Join(dir, "api.pem"), filepath.Join(dir, "api-key.pem")
	require.NoError(t, os.WriteFile(certFile, apiCert, 0o600))
	require.NoError(t, os.WriteFile(keyFile, apiKey, 0o600))

	for attempt := 0; ; attempt++ {
		acmeAddr, mgmtAddr := FreeAddr(t), FreeAddr(t)
		cfg := map[string]any{"pebble": map[string]any{
			"listenAddress":           acmeAddr,
			"managementListenAddress": mgmtAddr,
			"certificate":             certFile,
			"privateKey":              keyFile,
			"httpPort":                o.TLSPort, // HTTP-01 is never offered: certmagic disables it
			"tlsPort":                 o.TLSPort,
			"keyAlgorithm":            "ecdsa",
			"profiles": map[string]any{"default": map[string]any{
				"description":    "the spacerouter tests' profile",
				"validityPeriod": uint64(o.Validity / time.Second),
			}},
		}}
		b, err := json.Marshal(cfg)
		require.NoError(t, err)
		cfgFile := filepath.Join(dir, "pebble.json")
		require.NoError(t, os.WriteFile(cfgFile, b, 0o600))

		p := &Pebble{
			Directory: "https://" + acmeAddr + "/dir",
			apiRoots:  apiPool,
			exited:    make(chan struct{}),
			output:    &syncBuffer{},
		}
		p.cmd = exec.Command(bin, "-config", cfgFile, "-dnsserver", dns.Addr())
		p.cmd.Env = append(os.Environ(),
			"PEBBLE_VA_NOSLEEP=1",      // validate at once, not after up to 5 s
			"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce answers
			"PEBBLE_AUTHZREUSE=0",      // every order validates through the listener
		)
		p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
		require.NoError(t, p.cmd.Start())
		go func() {
			p.cmd.Wait()
			close(p.exited)
		}()
		t.Cleanup(func() {
			p.Stop()
			if t.Failed() {
				t.Logf("Pebble's output:\n%s", p.output.String())
			}
		})
		err = p.waitReady(mgmtAddr)
		if err == nil {
			p.RootsFile = filepath.Join(dir, "roots.pem")
			p.RootPEM = p.fetchRoot(t, mgmtAddr)
			p.Root = x509.NewCertPool()
			require.True(t, p.Root.AppendCertsFromPEM(p.RootPEM))
			require.NoError(t, os.WriteFile(p.RootsFile, append(apiCert, p.RootPEM...), 0o600))
			return p
		}
		p.Stop()
		// A port taken between freeAddr and Pebble's listen: try others.
		if attempt == 2 {
			t.Fatalf("Pebble did not start: %v\n%s", err, p.output.String())
		}
	}
}

// waitReady waits until the ACME directory answers 200, or Pebble exits.
func (p *Pebble) waitReady(mgmtAddr string) error {
	client := p.client()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return errors.New("Pebble exited")
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Pebble directory %s did not answer within 20 s: %v", p.Directory, err)
		}
	}
}

// client is an HTTP client trusting Pebble's API certificate.
func (p *Pebble) client() *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.apiRoots}},
	}
}

// fetchRoot returns Pebble's issuing root from its management API.
func (p *Pebble) fetchRoot(t testing.TB, mgmtAddr string) []byte {
	t.Helper()
	resp, err := p.client().Get("https://" + mgmtAddr + "/roots/0")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

// Output is what Pebble wrote so far.
func (p *Pebble) Output() string { return p.output.String() }

// Stop ends Pebble (its directory then refuses connections).
func (p *Pebble) Stop() {
	p.stopOnce.Do(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// apiCertificate makes the self-signed certificate of Pebble's ACME and
// management API, for 127.0.0.1 and localhost, and a pool trusting it.
func apiCertificate(t testing.TB) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pebble API (spacerouter tests)"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), pool
}

// syncBuffer is a bytes.Buffer safe for Pebble's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// PortOf returns the port of a host:port address.
func PortOf(t testing.TB, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return p
}
