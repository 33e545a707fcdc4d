package router

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/spaceca"
)

// peerCert is the client certificate of one TLS connection (SPEC.md
// 11.1): verified once per connection and trust set, and rechecked on
// each request against revocations and the clock, which is cheap.
type peerCert struct {
	leaf          *x509.Certificate
	intermediates []*x509.Certificate
	// short is the client_cert= value: the first 16 hex digits of the
	// leaf's SHA-256; xfcc the X-Forwarded-Client-Cert value.
	short []byte
	xfcc  []byte

	// mu guards trust and verdict: HTTP/2 streams of the connection judge
	// concurrently.
	mu      sync.Mutex
	trust   *spaceca.TrustSet // the set the verdict was made against
	verdict spaceca.Verdict
}

// newPeerCert keeps the client certificate of a handshake, nil when the
// client sent none.
func newPeerCert(st *tls.ConnectionState) *peerCert {
	if len(st.PeerCertificates) == 0 {
		return nil
	}
	leaf := st.PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	p := &peerCert{leaf: leaf, intermediates: st.PeerCertificates[1:]}
	p.short = hex.AppendEncode(nil, sum[:8])
	p.xfcc = spaceca.AppendXFCC(nil, leaf)
	return p
}

// judge returns why the certificate is refused by trust now ("" when it
// is good), verifying the chain only when trust changed since the
// connection's last verdict (a reload). verified reports a verification
// made by this call, for the metrics.
func (p *peerCert) judge(trust *spaceca.TrustSet, revoked *spaceca.Revocations, now time.Time) (cause spaceca.Cause, ca *x509.Certificate, verified bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.trust != trust {
		p.verdict = spaceca.VerifyClient(p.leaf, p.intermediates, trust, revoked, now)
		p.trust = trust
		return p.verdict.Cause, p.verdict.CA, true
	}
	return p.verdict.Recheck(now, revoked), p.verdict.CA, false
}

// causeCodes are the H41 rows by cause.
var causeCodes = map[spaceca.Cause]errcodes.Code{
	spaceca.CauseExpired:   errcodes.ClientCertExpired,
	spaceca.CauseUnknownCA: errcodes.ClientCertUnknownCA,
	spaceca.CauseRevoked:   errcodes.ClientCertRevoked,
	spaceca.CauseBadUsage:  errcodes.ClientCertBadUsage,
	spaceca.CauseRetiredCA: errcodes.ClientCertRetiredCA,
}

// admitClient applies the app's ip_rules and mtls to the request (SPEC.md
// 11.1, 11.2): H42 for an address outside the rules (rules are checked
// on every request, so a reload that removes an address applies to open
// connections), H40 for no certificate and H41 for a refused one under
// require; under optional the request goes on, and the dyno is told.
func (ex *exchange) admitClient() error {
	a := ex.app
	if len(a.allow) > 0 && !allowed(a.allow, ex.peer) {
		a.m.ipDenied.Inc()
		return errcodes.New(errcodes.ForbiddenByIPRule, nil)
	}
	if a.mtls.Mode == config.MTLSOff || a.mtls.Mode == "" {
		return nil
	}
	pc := ex.cl.peerCert()
	if pc == nil {
		ex.certVerify = certNone
		if a.mtls.Mode == config.MTLSRequire {
			return errcodes.New(errcodes.ClientCertRequired, nil)
		}
		return nil
	}
	now := ex.start
	if ex.rt.clockSet {
		now = ex.rt.now()
	}
	cause, ca, verified := pc.judge(a.trust, ex.rt.revocations(), now)
	if verified {
		a.m.verified(cause, a.trustRole(ca))
	}
	if cause != "" {
		ex.certVerify, ex.certCause = certFailed, cause
		if a.mtls.Mode == config.MTLSRequire {
			return errcodes.New(causeCodes[cause], nil)
		}
		return nil
	}
	ex.certVerify, ex.cert = certSuccess, pc
	ex.line.ClientCert = pc.short
	return nil
}

// allowed reports whether peer is in one of the networks.
func allowed(nets []netip.Prefix, peer netip.Addr) bool {
	peer = peer.Unmap()
	for _, p := range nets {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// What the dyno is told of the client certificate (X-SSL-Client-Verify).
const (
	certUnasked = iota // the app does not ask: nothing
	certNone           // no certificate (mtls optional)
	certFailed         // refused (mtls optional): FAILED:<cause>
	certSuccess        // verified
)

// appendClientCertFields appends what the dyno is told of the client
// certificate under forward: xfcc (SPEC.md 11.1): the router's own
// X-Forwarded-Client-Cert (Envoy's format) for a verified certificate, and
// X-SSL-Client-Verify. Nothing of a refused certificate's subject or names
// reaches the dyno.
func (ex *exchange) appendClientCertFields(b []byte) []byte {
	if ex.certVerify == certUnasked || ex.app.mtls.Forward == config.ForwardNone {
		return b
	}
	switch ex.certVerify {
	case certSuccess:
		b = append(b, "X-Forwarded-Client-Cert: "...)
		b = append(b, ex.cert.xfcc...)
		b = append(b, "\r\nX-SSL-Client-Verify: SUCCESS\r\n"...)
	case certNone:
		b = append(b, "X-SSL-Client-Verify: NONE\r\n"...)
	case certFailed:
		b = append(b, "X-SSL-Client-Verify: FAILED:"...)
		b = append(b, ex.certCause...)
		b = append(b, '\r', '\n')
	}
	return b
}

// clientCertField reports a client-sent field that claims a client
// certificate (X-Forwarded-Client-Cert, X-SSL-Client-*): the router drops
// it on every app, so a dyno never sees a forged one (SPEC.md 11.1).
func clientCertField(name []byte) bool {
	if len(name) < len("x-ssl-client-") || name[0]|0x20 != 'x' {
		return false
	}
	return len(name) == len("x-forwarded-client-cert") && equalFoldString(name, "x-forwarded-client-cert") ||
		prefixFoldString(name, "x-ssl-client-")
}

func equalFoldString(b []byte, s string) bool { return len(b) == len(s) && prefixFoldString(b, s) }

func prefixFoldString(b []byte, s string) bool {
	if len(b) < len(s) {
		return false
	}
	for i := range len(s) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// trustRole names the kind of CA a client certificate chains to, for the
// metrics: space (the current space CA), space_previous, bundle (an
// mtls.trust file), none.
func (a *app) trustRole(ca *x509.Certificate) string {
	switch {
	case ca == nil:
		return "none"
	case a.spaceCA != nil && ca.Equal(a.spaceCA):
		return "space"
	case a.spacePrev[string(ca.Raw)]:
		return "space_previous"
	}
	return "bundle"
}

// trustFor builds the trust set of an app's mtls.trust: the space CA with
// its previous CAs for "space", and the CA certificates of each bundle.
func trustFor(ac *config.App, ca *spaceca.CA) (*spaceca.TrustSet, error) {
	var anchors []spaceca.Anchor
	for _, t := range ac.MTLS.Trust {
		if t == config.TrustSpace {
			if ca == nil {
				return nil, fmt.Errorf("app %s: mtls.trust names the space CA, and the space has none", ac.Name)
			}
			anchors = append(anchors, ca.Anchors()...)
			continue
		}
		as, err := spaceca.LoadBundle(t)
		if err != nil {
			return nil, fmt.Errorf("app %s: mtls.trust: %w", ac.Name, err)
		}
		anchors = append(anchors, as...)
	}
	return spaceca.NewTrustSet(anchors...), nil
}

// openCA opens the space CA of cfg (nil without space_ca).
func openCA(cfg *config.Config) (*spaceca.CA, error) {
	sc := cfg.SpaceCA
	if sc == nil {
		return nil, nil
	}
	o := spaceca.Options{CertPath: sc.Cert, KeyPath: sc.Key, StateDir: sc.StateDir, Space: cfg.Space}
	for _, p := range sc.Previous {
		o.Previous = append(o.Previous, spaceca.Previous{CertPath: p.Cert, RetireAt: p.RetireAt})
	}
	ca, err := spaceca.Open(o)
	if err != nil {
		return nil, fmt.Errorf("opening the space CA: %w", err)
	}
	return ca, nil
}

// sameCA reports whether two configs name the same space CA files.
func sameCA(a, b *config.SpaceCA) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Cert != b.Cert || a.Key != b.Key || a.StateDir != b.StateDir || len(a.Previous) != len(b.Previous) {
		return false
	}
	for i := range a.Previous {
		if a.Previous[i] != b.Previous[i] {
			return false
		}
	}
	return true
}

// revocations returns the space CA's revoked serials now, with those of a
// shared space's clients/ keys (nil: none).
func (r *Router) revocations() *spaceca.Revocations {
	if ca := r.ca.Load(); ca != nil {
		return r.withShared(ca.Revocations())
	}
	return nil
}

// Intervals of the space CA's background work (SPEC.md 11.3): the state
// directory is read again within 2 s of a change, successors are issued
// hourly.
const (
	caWatchEvery = time.Second
	caRenewEvery = time.Hour
)

// caLoop keeps the running router in step with the space CA's state
// directory (a certificate issued or revoked by spacerouter ca takes
// effect within 2 s, without a reload) and issues successors 75 days
// before expiry.
func (r *Router) caLoop() {
	defer r.bgWG.Done()
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("recovered panic in the space CA loop", zap.Any("panic", p), zap.Stack("stack"))
		}
	}()
	watch := time.NewTicker(caWatchEvery)
	defer watch.Stop()
	renewAt := time.Now()
	for {
		if ca := r.ca.Load(); ca != nil {
			if _, err := ca.Refresh(); err != nil {
				r.log.Error("reading the space CA state; the last good state stays", zap.Error(err))
			}
			if now := time.Now(); !now.Before(renewAt) {
				r.renew(ca)
				renewAt = now.Add(caRenewEvery)
			}
		}
		select {
		case <-r.stopCtx.Done():
			return
		case <-watch.C:
		}
	}
}

// renew issues the successors due (SPEC.md 11.3) and logs each.
func (r *Router) renew(ca *spaceca.CA) {
	renewals, err := ca.Renew(r.sp.Load().configured)
	for _, rn := range renewals {
		r.m.caRenewals.Inc()
		r.log.Warn("client certificate expires within 75 days: its successor was issued",
			zap.String(logging.KeyApp, rn.New.App), zap.String("old_id", rn.Old.ID), zap.String("new_id", rn.New.ID),
			zap.Time("old_not_after", rn.Old.NotAfter))
	}
	if err != nil {
		r.log.Error("issuing successors of expiring client certificates", zap.Error(err))
	}
}

// caCollector reports, at each scrape, the space CA's issued client
// certificates by app and status, and the expiry of the certificates of
// SPEC.md 12.2: role server (an app's served chains, files served now or
// ACME, the earliest), space_ca (app "_space"), client_ca (the CAs an app
// trusts, the earliest), client (an app's valid issued certificates, the
// earliest).
type caCollector struct {
	r              *Router
	issued, expiry *prometheus.Desc
}

func newCACollector(r *Router) *caCollector {
	return &caCollector{r: r,
		issued: prometheus.NewDesc("spacerouter_client_certificates",
			"Client certificates the space CA issued, by app and status (ready, expiring, expired, revoked).", []string{"app", "status"}, nil),
		expiry: prometheus.NewDesc("spacerouter_certificate_expiry_timestamp_seconds",
			"When a certificate expires (Unix seconds), by app and role: server, client_ca, space_ca (app _space), client (the earliest of each).", []string{"app", "role"}, nil),
	}
}

func (c *caCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.issued
	ch <- c.expiry
}

func (c *caCollector) Collect(ch chan<- prometheus.Metric) {
	sp := c.r.sp.Load()
	if sp == nil {
		return
	}
	earliest := map[[2]string]time.Time{}
	note := func(app, role string, t time.Time) {
		k := [2]string{app, role}
		if have, ok := earliest[k]; !ok || t.Before(have) {
			earliest[k] = t
		}
	}
	if ca := c.r.ca.Load(); ca != nil {
		for _, n := range ca.Counts() {
			if sp.configured(n.App) {
				ch <- prometheus.MustNewConstMetric(c.issued, prometheus.GaugeValue, float64(n.N), n.App, string(n.Status))
			}
		}
		note(spaceLabel, "space_ca", ca.Certificate().NotAfter)
		now := time.Now()
		for _, cl := range ca.List("") {
			if st := cl.StatusAt(now); sp.configured(cl.App) && (st == spaceca.StatusReady || st == spaceca.StatusExpiring) {
				note(cl.App, "client", cl.NotAfter)
			}
		}
	}
	if st := c.r.tlsStore.Load(); st != nil {
		for _, a := range sp.apps {
			if t, ok := st.Expiry(a.name); ok {
				note(a.name, "server", t)
			}
		}
	}
	for app, t := range c.r.acmeExpiry() {
		if sp.configured(app) {
			note(app, "server", t)
		}
	}
	for _, a := range sp.apps {
		if a.trust == nil {
			continue
		}
		for _, an := range a.trust.Anchors() {
			note(a.name, "client_ca", an.Cert.NotAfter)
		}
	}
	for k, t := range earliest {
		ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(t.Unix()), k[0], k[1])
	}
}

// spaceLabel is the app label of what belongs to the whole space.
const spaceLabel = "_space"

// configured reports an app of the space, so metric labels come from the
// config only.
func (sp *space) configured(name string) bool { return sp.byName(name) != nil }
