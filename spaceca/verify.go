package spaceca

import (
	"crypto/x509"
	"fmt"
	"time"
)

// Cause is why a client certificate is refused: the cause of an H41 router
// line (SPEC.md section 6). The zero value means the certificate is good.
type Cause string

// The causes of SPEC.md section 11.1. When several rules fail, the first
// of this list is the cause: a certificate with no trusted chain says
// nothing trustworthy about itself, and a decision (retiring a CA,
// revoking a certificate) says more than the calendar.
const (
	CauseUnknownCA Cause = "unknown_ca" // no chain to a trusted CA
	CauseRetiredCA Cause = "retired_ca" // every chain ends in a retired CA
	CauseRevoked   Cause = "revoked"    // the serial is revoked
	CauseExpired   Cause = "expired"    // now is outside the validity of a certificate of the chain
	CauseBadUsage  Cause = "bad_usage"  // no clientAuth extended key usage
)

// Anchor is a CA whose client certificates are trusted.
type Anchor struct {
	Cert *x509.Certificate
	// RetireAt is when the CA stops being trusted; zero: never.
	RetireAt time.Time
}

// TrustSet is the CAs an app trusts for client certificates (its
// mtls.trust: the space CAs and PEM bundles). It does not change once
// made; a reload makes a new one.
type TrustSet struct {
	pool    *x509.CertPool
	retire  map[string]time.Time // by string(Cert.Raw); zero: never
	anchors []Anchor
}

// NewTrustSet returns the set of anchors. A CA given more than once keeps
// the latest retire time, never (zero) being the latest.
func NewTrustSet(anchors ...Anchor) *TrustSet {
	t := &TrustSet{pool: x509.NewCertPool(), retire: map[string]time.Time{}}
	for _, a := range anchors {
		key := string(a.Cert.Raw)
		if have, ok := t.retire[key]; ok {
			if !have.IsZero() && (a.RetireAt.IsZero() || a.RetireAt.After(have)) {
				t.retire[key] = a.RetireAt
			}
			continue
		}
		t.retire[key] = a.RetireAt
		t.pool.AddCert(a.Cert)
		t.anchors = append(t.anchors, a)
	}
	for i := range t.anchors {
		t.anchors[i].RetireAt = t.retire[string(t.anchors[i].Cert.Raw)]
	}
	return t
}

// Anchors returns the set's CAs, each once.
func (t *TrustSet) Anchors() []Anchor { return append([]Anchor(nil), t.anchors...) }

// LoadBundle returns the CA certificates of the PEM bundle path (an
// mtls.trust entry) as anchors that never retire. A certificate that is
// not a CA is an error naming the file.
func LoadBundle(path string) ([]Anchor, error) {
	certs, err := readCertificates(path)
	if err != nil {
		return nil, fmt.Errorf("reading a trust bundle: %w", err)
	}
	out := make([]Anchor, 0, len(certs))
	for i, c := range certs {
		if err := checkCACert(c, fmt.Sprintf("%s: certificate %d (%s)", path, i+1, c.Subject)); err != nil {
			return nil, err
		}
		out = append(out, Anchor{Cert: c})
	}
	return out, nil
}

// Verdict is the judgement of a client certificate: made once per
// connection by VerifyClient, rechecked on each request by Recheck.
type Verdict struct {
	// Cause is why the certificate is refused, "" when it is good.
	Cause Cause
	// CA is the trusted CA its chain ends in; nil for CauseUnknownCA.
	CA *x509.Certificate

	validFrom  time.Time // the latest NotBefore of the chain
	validUntil time.Time // the earliest NotAfter of the chain
	retireAt   time.Time // CA's; zero: never
	serial     string    // the leaf's serial, as Revocations keys it
}

// VerifyClient judges a client certificate by the rules of SPEC.md
// section 11.1 at now: a chain from leaf (through intermediates, as the
// client sent them) to an anchor of trust, every certificate of the chain
// valid at now, the extended key usage clientAuth on the leaf (and allowed
// by the chain), the serial not in revoked (nil: none revoked), the CA not
// retired. It costs one or more x509 chain verifications; call it once per
// connection, and again only when trust changes (a reload): Recheck
// covers time passing and revocations.
func VerifyClient(leaf *x509.Certificate, intermediates []*x509.Certificate, trust *TrustSet, revoked *Revocations, now time.Time) Verdict {
	v := Verdict{serial: string(leaf.SerialNumber.Bytes())}
	if trust == nil {
		v.Cause = CauseUnknownCA
		return v
	}
	opts := x509.VerifyOptions{Roots: trust.pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range intermediates {
		if _, anchor := trust.retire[string(c.Raw)]; anchor {
			// A client that sends the CA itself (client.crt holds the
			// chain to it) would have it checked twice: a trust anchor
			// needs no intermediate.
			continue
		}
		if opts.Intermediates == nil {
			opts.Intermediates = x509.NewCertPool()
		}
		opts.Intermediates.AddCert(c)
	}
	chains, err := leaf.Verify(opts)
	usageOK := err == nil
	if err != nil {
		// Which rule failed? Look for a chain, for any usage, at a time the
		// leaf is valid: the nearest to now, then its start (when it was
		// issued, its CA was valid).
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
		for _, at := range []time.Time{clamp(now, leaf.NotBefore, leaf.NotAfter), leaf.NotBefore} {
			opts.CurrentTime = at
			if chains, err = leaf.Verify(opts); err == nil {
				break
			}
		}
		if err != nil {
			v.Cause = CauseUnknownCA
			return v
		}
	}
	v.pick(chains, trust, now)
	if v.Cause = v.Recheck(now, revoked); v.Cause != "" {
		return v
	}
	if !usageOK || !clientAuth(leaf) {
		// Time is fine, so the usage is what failed.
		v.Cause = CauseBadUsage
	}
	return v
}

// pick keeps the chain to judge: one to a CA not retired at now if there
// is one, and records its CA, retire time and validity.
func (v *Verdict) pick(chains [][]*x509.Certificate, trust *TrustSet, now time.Time) {
	best := chains[0]
	for _, ch := range chains {
		if r := trust.retire[string(ch[len(ch)-1].Raw)]; r.IsZero() || now.Before(r) {
			best = ch
			break
		}
	}
	v.CA = best[len(best)-1]
	v.retireAt = trust.retire[string(v.CA.Raw)]
	v.validFrom, v.validUntil = best[0].NotBefore, best[0].NotAfter
	for _, c := range best[1:] {
		if c.NotBefore.After(v.validFrom) {
			v.validFrom = c.NotBefore
		}
		if c.NotAfter.Before(v.validUntil) {
			v.validUntil = c.NotAfter
		}
	}
}

// Recheck judges the verdict again at now against revoked (nil: none),
// for a connection's next request: its CA retired, its serial revoked, its
// chain expired. A refused verdict stays refused with its cause (trust
// changes only with a reload, which calls VerifyClient again). It does not
// allocate.
func (v *Verdict) Recheck(now time.Time, revoked *Revocations) Cause {
	switch {
	case v.Cause != "":
		return v.Cause
	case !v.retireAt.IsZero() && !now.Before(v.retireAt):
		return CauseRetiredCA
	case revoked.revokedKey(v.serial):
		return CauseRevoked
	case now.Before(v.validFrom) || now.After(v.validUntil):
		return CauseExpired
	}
	return ""
}

// clientAuth reports whether c names clientAuth (or any usage) in its
// extended key usage. A certificate without the extension is refused,
// though RFC 5280 would let it serve any purpose: SPEC.md section 11.1
// asks for clientAuth.
func clientAuth(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// clamp returns t moved into [lo, hi].
func clamp(t, lo, hi time.Time) time.Time {
	switch {
	case t.Before(lo):
		return lo
	case t.After(hi):
		return hi
	}
	return t
}
