package acme

import (
	"crypto/tls"
	"fmt"
	"slices"

	"github.com/caddyserver/certmagic"
)

// ALPNProto is the ALPN protocol of a TLS-ALPN-01 validation handshake
// (RFC 8737 section 6.2). A connection that negotiated it carries no
// request: the router closes it after the handshake (RFC 8737 section 3).
const ALPNProto = "acme-tls/1"

// IsChallenge reports whether hello is an ACME server's TLS-ALPN-01
// validation: a server name and acme-tls/1 as the only ALPN protocol
// (RFC 8737 section 3). Such a hello never gets an app's certificate.
func IsChallenge(hello *tls.ClientHelloInfo) bool {
	return hello.ServerName != "" && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ALPNProto
}

// ChallengeConfig returns the config that answers hello, a TLS-ALPN-01
// validation of a managed domain, with the challenge certificate of the
// order in progress (from memory, or from storage when another router
// sharing it placed the order), and true; nil and false for any other
// hello. Its only ALPN protocol is acme-tls/1. With no order in progress
// for the name, its GetCertificate fails and the handshake ends with
// internal_error, which fails a stray validation as it should.
func (m *Manager) ChallengeConfig(hello *tls.ClientHelloInfo) (*tls.Config, bool) {
	if !IsChallenge(hello) {
		return nil, false
	}
	name := normalizeName(hello.ServerName)
	m.mu.RLock()
	_, ok := m.domains[name]
	m.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return m.challenge, true
}

// GetCertificate returns the certificate of the managed domain hello
// names (SNI, case folded), with its chain: the newest one in memory,
// which stays served while a renewal fails, even past its expiry. A
// managed domain with no certificate yet gets an error wrapping ErrPending
// that says its state and last error (the router refuses the handshake
// with unrecognized_name and logs it); a name not managed gets one
// wrapping ErrNotManaged. It is called on every handshake of a tls: auto
// app; it does no I/O.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalizeName(hello.ServerName)
	m.mu.RLock()
	d, ok := m.domains[name]
	var state State
	var lastErr string
	if ok {
		state, lastErr = d.state, d.lastErr
	}
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotManaged, name)
	}
	if c, ok := m.current(name); ok {
		tc := c.Certificate
		return &tc, nil
	}
	if lastErr != "" {
		return nil, fmt.Errorf("%w for %s (%s; last error: %s)", ErrPending, name, state, lastErr)
	}
	return nil, fmt.Errorf("%w for %s (%s)", ErrPending, name, state)
}

// current returns the certificate in certmagic's cache for the domain
// name (the latest to expire when a renewal left two), without holding
// m.mu: certmagic calls configFor, which takes m.mu, under its cache lock.
func (m *Manager) current(name string) (certmagic.Certificate, bool) {
	var best certmagic.Certificate
	found := false
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf == nil || !slices.Contains(c.Names, name) {
			continue
		}
		if !found || c.Leaf.NotAfter.After(best.Leaf.NotAfter) {
			best, found = c, true
		}
	}
	return best, found
}
