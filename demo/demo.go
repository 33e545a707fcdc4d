package demo

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Space is the name of the demo space, and App the name of its one app.
const (
	Space = "demo"
	App   = "demo"
)

const (
	// dynoCount is how many demo dynos StartDynos starts.
	dynoCount = 2
	// maxSlowMS bounds /slow?ms=N, so a typo cannot hold a dyno for hours.
	maxSlowMS = 10_000
	// defaultSlowMS is the wait of /slow without ms.
	defaultSlowMS = 1000
	// streamEvents events are sent on /stream, streamGap apart.
	streamEvents = 5
	streamGap    = 200 * time.Millisecond
)

// DynoName returns the name of the demo dyno with index i (from 0): web.1,
// web.2, and so on. Config names the dynos in the same way.
func DynoName(i int) string { return "web." + strconv.Itoa(i+1) }

// StartDynos starts the two demo dynos, web.1 and web.2, each an HTTP/1.1
// server on its own 127.0.0.1 port, and returns their addresses in that
// order. The dynos run until stop is called or ctx is done, whichever comes
// first; stop may be called more than once and returns once both servers
// have stopped. Requests in flight are cut when the dynos stop: stop the
// router first.
func StartDynos(ctx context.Context) (addrs []string, stop func(), err error) {
	lns := make([]net.Listener, 0, dynoCount)
	for i := range dynoCount {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, nil, fmt.Errorf("listening for demo dyno %s: %w", DynoName(i), err)
		}
		lns = append(lns, ln)
	}

	servers := make([]*http.Server, len(lns))
	var wg sync.WaitGroup
	for i, ln := range lns {
		srv := newServer(DynoName(i))
		servers[i] = srv
		addrs = append(addrs, ln.Addr().String())
		// Serve returns http.ErrServerClosed once stop closes srv.
		wg.Go(func() { _ = srv.Serve(ln) })
	}

	var once sync.Once
	stopAll := func() {
		once.Do(func() {
			for _, srv := range servers {
				_ = srv.Close()
			}
			wg.Wait()
		})
	}
	unregister := context.AfterFunc(ctx, stopAll)
	return addrs, func() { unregister(); stopAll() }, nil
}

// newServer returns the HTTP server of the dyno called name, with every
// limit set. The write timeout leaves room for the longest /slow.
func newServer(name string) *http.Server {
	return &http.Server{
		Handler:           (&dyno{name: name}).handler(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      maxSlowMS*time.Millisecond + 20*time.Second,
		// Longer than the router's default dyno_keepalive (90s), so the
		// router, not the dyno, closes idle pooled connections.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 1 << 20,
	}
}

// CertFiles names one certificate chain and its key, as PEM files.
type CertFiles struct {
	Cert, Key string
}

// Listeners are where the demo space listens; HTTPS is on when Certs (or
// Cert and Key) name a certificate (see SelfSignedCerts).
type Listeners struct {
	HTTP, HTTPS string
	// Certs are the demo app's certificate chains, as SelfSignedCerts
	// makes them.
	Certs []CertFiles
	// Cert and Key name one more chain, after Certs.
	//
	// Deprecated: use Certs and SelfSignedCerts; one chain (SelfSigned's
	// ECDSA one) leaves TLS 1.2 clients of the demo's profile without a
	// suite (issue 9).
	Cert, Key string
}

// certs returns every chain ln names.
func (ln *Listeners) certs() []CertFiles {
	if ln.Cert == "" && ln.Key == "" {
		return ln.Certs
	}
	return append(slices.Clip(ln.Certs), CertFiles{Cert: ln.Cert, Key: ln.Key})
}

// Config returns the YAML of the demo space: space demo, plain HTTP (and
// HTTPS when ln says) on loopback, router lines on stdout, and one app,
// demo, on the domains localhost and demo.localhost, whose dynos web.1,
// web.2, … are at dynoAddrs in that order. Its features key is omitted, so
// the app has the default features of a new app (the salesforce TLS
// profile, whose TLS 1.2 suites are all RSA-signed: SelfSignedCerts makes
// an RSA certificate for them).
func Config(ln Listeners, dynoAddrs []string) []byte {
	var b bytes.Buffer
	b.WriteString("# The built-in demo space: spacerouter without -config.\n")
	fmt.Fprintf(&b, "space: %s\n", Space)
	b.WriteString("listen:\n")
	fmt.Fprintf(&b, "  http: %s\n", strconv.Quote(ln.HTTP))
	if ln.HTTPS != "" {
		fmt.Fprintf(&b, "  https: %s\n", strconv.Quote(ln.HTTPS))
	}
	b.WriteString("log:\n")
	b.WriteString("  router: stdout\n")
	b.WriteString("apps:\n")
	fmt.Fprintf(&b, "  - name: %s\n", App)
	b.WriteString("    domains: [localhost, demo.localhost]\n")
	if certs := ln.certs(); ln.HTTPS != "" && len(certs) > 0 {
		b.WriteString("    tls:\n")
		for _, c := range certs {
			fmt.Fprintf(&b, "      - {cert: %s, key: %s}\n", strconv.Quote(c.Cert), strconv.Quote(c.Key))
		}
	}
	b.WriteString("    dynos:\n")
	for i, addr := range dynoAddrs {
		fmt.Fprintf(&b, "      - {name: %s, address: %s}\n", DynoName(i), strconv.Quote(addr))
	}
	return b.Bytes()
}

// SelfSignedCerts makes two self-signed certificates for the demo's
// domains, an ECDSA P-256 one and an RSA-2048 one, and writes them and
// their keys into dir, ECDSA first. Both are needed: TLS 1.3 clients get
// the ECDSA one, and the demo's profile (salesforce, as for any new app)
// has only RSA-signed suites for TLS 1.2 (SPEC.md section 5), so without
// the RSA one `curl --tls-max 1.2` fails and the router warns at start
// (issue 9). They are valid for a year, so the router's 75-day expiry
// warning stays quiet.
func SelfSignedCerts(dir string) ([]CertFiles, error) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ECDSA key: %w", err)
	}
	ecFiles, err := writeSelfSigned(dir, "demo-ecdsa", ec, x509.KeyUsageDigitalSignature)
	if err != nil {
		return nil, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating RSA key: %w", err)
	}
	// KeyEncipherment: the profile's RSA key exchange suites encrypt the
	// premaster secret to this key.
	rsaFiles, err := writeSelfSigned(dir, "demo-rsa", rk, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment)
	if err != nil {
		return nil, err
	}
	return []CertFiles{ecFiles, rsaFiles}, nil
}

// SelfSigned makes the ECDSA certificate of SelfSignedCerts alone.
//
// Deprecated: use SelfSignedCerts; the demo's profile needs the RSA
// certificate too for TLS 1.2 clients (issue 9).
func SelfSigned(dir string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generating key: %w", err)
	}
	f, err := writeSelfSigned(dir, "demo", key, x509.KeyUsageDigitalSignature)
	return f.Cert, f.Key, err
}

// writeSelfSigned makes a self-signed certificate with key for the demo's
// domains and loopback addresses, valid for a year, and writes it and its
// key (PKCS #8) into dir as NAME.pem and NAME-key.pem.
func writeSelfSigned(dir, name string, key crypto.Signer, usage x509.KeyUsage) (CertFiles, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return CertFiles{}, fmt.Errorf("generating serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"spacerouter demo"}},
		DNSNames:     []string{"localhost", "demo.localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     usage,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return CertFiles{}, fmt.Errorf("creating certificate %s: %w", name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return CertFiles{}, fmt.Errorf("encoding key %s: %w", name, err)
	}
	f := CertFiles{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
	if err := os.WriteFile(f.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return CertFiles{}, fmt.Errorf("writing certificate: %w", err)
	}
	if err := os.WriteFile(f.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return CertFiles{}, fmt.Errorf("writing key: %w", err)
	}
	return f, nil
}

// dyno answers the requests of one demo dyno.
type dyno struct {
	name string
}

func (d *dyno) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", d.root)
	mux.HandleFunc("/headers", d.headers)
	mux.HandleFunc("GET /stream", d.stream)
	mux.HandleFunc("GET /slow", d.slow)
	mux.HandleFunc("/", d.notFound)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// X-Dyno shows in `curl -i` which dyno the router picked.
		w.Header().Set("X-Dyno", d.name)
		mux.ServeHTTP(w, r)
	})
}

// tryLines lists the pages of a demo dyno, for the root and 404 pages.
var tryLines = [...][2]string{
	{"/headers", "the request headers as the dyno received them (X-Request-Id, X-Forwarded-For, Via, …)"},
	{"/stream", "5 server-sent events, 200 ms apart"},
	{"/slow?ms=1500", "an answer after 1.5 s (at most 10 s)"},
}

// root says hello: HTML for a browser, plain text for curl and the like.
func (d *dyno) root(w http.ResponseWriter, r *http.Request) {
	reqID := r.Header.Get("X-Request-Id")
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello from %s!\n\n", d.name)
		fmt.Fprintf(w, "This is dyno %s of app %q, a demo dyno built into spacerouter.\n", d.name, App)
		if reqID != "" {
			fmt.Fprintf(w, "The router sent it request %s.\n", reqID)
		}
		fmt.Fprintf(w, "Ask again: the router picks web.1 or web.2 each time.\n\nTry:\n")
		for _, t := range tryLines {
			fmt.Fprintf(w, "  %-15s %s\n", t[0], t[1])
		}
		return
	}

	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	name := html.EscapeString(d.name)
	fmt.Fprintf(w, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%s · spacerouter demo</title></head>\n", name)
	fmt.Fprintf(w, "<body style=\"font-family: sans-serif; max-width: 40em; margin: 2em auto\">\n")
	fmt.Fprintf(w, "<h1>Hello from %s!</h1>\n", name)
	fmt.Fprintf(w, "<p>This is dyno <b>%s</b> of app <b>%s</b>, a demo dyno built into spacerouter.", name, App)
	if reqID != "" {
		fmt.Fprintf(w, " The router sent it request <code>%s</code>.", html.EscapeString(reqID))
	}
	fmt.Fprintf(w, "</p>\n<p>Reload: the router picks web.1 or web.2 each time.</p>\n<ul>\n")
	for _, t := range tryLines {
		fmt.Fprintf(w, "<li><a href=\"%s\">%s</a>: %s</li>\n", t[0], t[0], html.EscapeString(t[1]))
	}
	fmt.Fprintf(w, "</ul>\n</body></html>\n")
}

// headers echoes the request as the dyno received it: the request line,
// Host, then every header field, sorted by name.
func (d *dyno) headers(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s received this request from %s:\n\n", d.name, r.RemoteAddr)
	fmt.Fprintf(w, "%s %s %s\n", r.Method, r.RequestURI, r.Proto)
	fmt.Fprintf(w, "Host: %s\n", r.Host)
	for _, k := range slices.Sorted(maps.Keys(r.Header)) {
		for _, v := range r.Header[k] {
			fmt.Fprintf(w, "%s: %s\n", k, v)
		}
	}
}

// stream sends streamEvents server-sent events, streamGap apart, each
// flushed at once, and stops early when the client goes.
func (d *dyno) stream(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for i := 1; i <= streamEvents; i++ {
		if i > 1 && !wait(r.Context(), streamGap) {
			return
		}
		fmt.Fprintf(w, "id: %d\ndata: event %d of %d from %s at %s\n\n",
			i, i, streamEvents, d.name, time.Now().UTC().Format("15:04:05.000"))
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// slow answers after ?ms=N milliseconds (default 1000, at most 10 s), or
// returns at once, answering nothing, when the client goes first.
func (d *dyno) slow(w http.ResponseWriter, r *http.Request) {
	dur, err := slowDuration(r.URL.Query().Get("ms"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !wait(r.Context(), dur) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s waited %d ms before answering.\n", d.name, dur.Milliseconds())
}

var errSlowMS = fmt.Errorf("ms must be a whole number of milliseconds (at most %d are waited)", maxSlowMS)

// slowDuration parses the ms parameter of /slow: empty means
// defaultSlowMS, more than maxSlowMS means maxSlowMS.
func slowDuration(ms string) (time.Duration, error) {
	if ms == "" {
		return defaultSlowMS * time.Millisecond, nil
	}
	n, err := strconv.ParseUint(ms, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		n, err = maxSlowMS, nil
	}
	if err != nil {
		return 0, errSlowMS
	}
	return time.Duration(min(n, maxSlowMS)) * time.Millisecond, nil
}

// notFound lists the pages there are.
func (d *dyno) notFound(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(w, "%s has no page %s. Try:\n  %-15s %s\n", d.name, r.URL.Path, "/", "which dyno answered")
	for _, t := range tryLines {
		fmt.Fprintf(w, "  %-15s %s\n", t[0], t[1])
	}
}

// wait waits for d, and reports false if ctx was done first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
