package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spacerouter/spacerouter/internal/pebbletest"
)

// testRouter is the ACME part of the router's https listener, wired as the
// router should wire it: an acme-tls/1 validation gets ChallengeConfig and
// is closed after its handshake; a managed domain gets its certificate
// from GetCertificate; a pending one (ErrPending) or a name not managed
// gets a config without certificates, so crypto/tls refuses it with
// unrecognized_name.
type testRouter struct {
	ln      net.Listener
	addr    string
	mgr     atomic.Pointer[Manager]
	base    *tls.Config
	reject  *tls.Config
	wg      sync.WaitGroup
	refusMu sync.Mutex
	refused []error // why GetCertificate refused, as the router would log it
}

func newTestRouter(t *testing.T) *testRouter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &testRouter{ln: ln, addr: ln.Addr().String()}
	r.reject = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }}
	r.base = &tls.Config{GetConfigForClient: r.configForClient}
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Go(func() { r.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		r.wg.Wait()
	})
	return r
}

func (r *testRouter) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	m := r.mgr.Load()
	if m == nil {
		return r.reject, nil
	}
	if cfg, ok := m.ChallengeConfig(hello); ok {
		return cfg, nil
	}
	cert, err := m.GetCertificate(hello)
	if err != nil {
		r.refusMu.Lock()
		r.refused = append(r.refused, err)
		r.refusMu.Unlock()
		return r.reject, nil
	}
	return &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"http/1.1"}}, nil
}

func (r *testRouter) serve(c net.Conn) {
	defer c.Close()
	tc := tls.Server(c, r.base)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return
	}
	if tc.ConnectionState().NegotiatedProtocol == ALPNProto {
		return // a validation: nothing follows its handshake (RFC 8737 section 3)
	}
	tc.Write([]byte("hello\n"))
}

// refusals returns the errors of the refused handshakes so far.
func (r *testRouter) refusals() []error {
	r.refusMu.Lock()
	defer r.refusMu.Unlock()
	return append([]error(nil), r.refused...)
}

// dial makes a TLS handshake with the router for name, verifying the
// chain with roots and the name (verify-full); it returns the served leaf.
func (r *testRouter) dial(name string, roots *x509.CertPool) (*x509.Certificate, error) {
	return r.dialWith(&tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"http/1.1"}})
}

// dialServed makes a handshake for name without verifying anything and
// returns the served leaf.
func (r *testRouter) dialServed(name string) (*x509.Certificate, error) {
	return r.dialWith(&tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
}

func (r *testRouter) dialWith(cfg *tls.Config) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// testOptions are the Options of a test's Manager ordering from p for the
// router r, with storage in dir.
func testOptions(p *pebbletest.Pebble, r *testRouter, dir string) Options {
	return Options{
		Directory:        p.Directory,
		Email:            "ops@spacerouter.test",
		AgreeTOS:         true,
		TrustedRootsFile: p.RootsFile,
		Storage:          dir,
		ListenAddr:       r.addr,
	}
}

// startManager makes a Manager with opts and an observed log, sets it on
// r (when not nil) and stops it at the test's end.
func startManager(t *testing.T, opts Options, r *testRouter) (*Manager, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	m, err := New(opts, zap.New(core))
	require.NoError(t, err)
	t.Cleanup(m.Stop)
	if r != nil {
		r.mgr.Store(m)
	}
	return m, logs
}

// waitStatus waits until cond holds for the Manager's status by domain,
// and returns that status; it fails the test after timeout with the last
// status seen.
func waitStatus(t *testing.T, m *Manager, timeout time.Duration, what string, cond func(map[string]DomainStatus) bool) map[string]DomainStatus {
	t.Helper()
	var byName map[string]DomainStatus
	waitFor(t, timeout, what, func() bool {
		byName = byDomain(m.Status())
		return cond(byName)
	}, func() string { return fmt.Sprintf("the status is %+v", byName) })
	return byName
}

// waitFor checks cond every 20 ms until it holds; it fails the test after
// timeout, with the text of the optional last function.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, last ...func() string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			msg := ""
			for _, l := range last {
				msg += "; " + l()
			}
			t.Fatalf("waited %s for %s%s", timeout, what, msg)
		case <-tick.C:
		}
	}
}

// byDomain indexes statuses by domain.
func byDomain(statuses []DomainStatus) map[string]DomainStatus {
	byName := make(map[string]DomainStatus, len(statuses))
	for _, s := range statuses {
		byName[s.Domain] = s
	}
	return byName
}

// allState reports whether every one of names is in state.
func allState(state State, names ...string) func(map[string]DomainStatus) bool {
	return func(s map[string]DomainStatus) bool {
		for _, n := range names {
			if s[n].State != state {
				return false
			}
		}
		return true
	}
}

// runSeq numbers the domains of the tests: certmagic keeps state by
// domain name for the whole process (its job queue, the backoff of failed
// renewals, the challenges in progress), so a name is never reused, even
// by -count=N.
var runSeq atomic.Int64

// uniq returns name with a label in front that no other test of the
// process uses.
func uniq(name string) string {
	return fmt.Sprintf("r%d-%s", runSeq.Add(1), name)
}

// hello is a ClientHello for name with the given ALPN protocols.
func hello(name string, protos ...string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{ServerName: name, SupportedProtos: protos}
}

// ordersFor counts the orders the Manager started for domain.
func ordersFor(logs *observer.ObservedLogs, domain string) int {
	return logs.FilterMessage("ACME order started").FilterField(zap.String("domain", domain)).Len()
}

// isUnrecognizedName reports whether err is a client's handshake error
// for the alert unrecognized_name (112). The one place that reads an error
// string: crypto/tls hands the client a received alert as an unexported
// type, not as tls.AlertError, so its text is all there is.
func isUnrecognizedName(err error) bool {
	return err != nil && strings.Contains(err.Error(), "remote error: tls: unrecognized name")
}
