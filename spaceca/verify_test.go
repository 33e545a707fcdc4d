package spaceca

import (
	"crypto/ecdsa"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// verifyPKI is the trust of the verify tests at now: current (a space CA),
// previous (retires at retire), inter (an intermediate under current that
// allows serverAuth only), bundle (a CA from a PEM bundle with an
// intermediate under it), untrusted, and expiredCA (current's key, ended).
type verifyPKI struct {
	now, retire                     time.Time
	current, previous, untrusted    *x509.Certificate
	bundle, bundleInter, serverOnly *x509.Certificate
	expiredCA                       *x509.Certificate
	key                             *ecdsa.PrivateKey // every CA's key, for speed
	trust                           *TrustSet
}

func newVerifyPKI(tb testing.TB) *verifyPKI {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	p := &verifyPKI{now: now, retire: now.Add(time.Hour), key: newKey(tb)}
	ca := func(cn string, from, to time.Time, parent *x509.Certificate, usages ...x509.ExtKeyUsage) *x509.Certificate {
		return issue(tb, tmpl{cn: cn, ca: true, notBefore: from, notAfter: to, usages: usages}, p.key.Public(), parent, p.key)
	}
	year := now.AddDate(-1, 0, 0)
	next := now.AddDate(1, 0, 0)
	p.current = ca("current", year, next, nil)
	p.previous = ca("previous", year, next, nil)
	p.untrusted = ca("untrusted", year, next, nil)
	p.bundle = ca("bundle", year, next, nil)
	p.bundleInter = ca("bundle intermediate", year, next, p.bundle)
	p.serverOnly = ca("server-only intermediate", year, next, p.current, x509.ExtKeyUsageServerAuth)
	p.expiredCA = ca("expired CA", year, now.Add(-time.Hour), nil)
	p.trust = NewTrustSet(Anchor{Cert: p.current}, Anchor{Cert: p.previous, RetireAt: p.retire},
		Anchor{Cert: p.bundle}, Anchor{Cert: p.expiredCA})
	return p
}

// leaf issues a client certificate under parent.
func (p *verifyPKI) leaf(tb testing.TB, parent *x509.Certificate, serial int64, from, to time.Time, usages ...x509.ExtKeyUsage) *x509.Certificate {
	return issue(tb, tmpl{cn: "client", notBefore: from, notAfter: to, usages: usages, serial: serial}, p.key.Public(), parent, p.key)
}

func revokedSet(serials ...int64) *Revocations {
	r := &Revocations{serials: map[string]struct{}{}}
	for _, s := range serials {
		r.serials[string(big.NewInt(s).Bytes())] = struct{}{}
	}
	return r
}

// TestVerifyClient: the rules of SPEC.md section 11.1, each cause, and
// which cause wins when several rules fail.
func TestVerifyClient(t *testing.T) {
	t.Parallel()
	p := newVerifyPKI(t)
	now := p.now
	from, to := now.Add(-time.Hour), now.AddDate(0, 13, 0)
	clientAuth := x509.ExtKeyUsageClientAuth
	revoked := revokedSet(7)
	cases := []struct {
		name          string
		leaf          *x509.Certificate
		intermediates []*x509.Certificate
		at            time.Time
		cause         Cause
		ca            *x509.Certificate // the CA of the verdict, nil for none
	}{
		{"good", p.leaf(t, p.current, 1, from, to, clientAuth), nil, now, "", p.current},
		{"any usage", p.leaf(t, p.current, 1, from, to, x509.ExtKeyUsageAny), nil, now, "", p.current},
		{"client and server usage", p.leaf(t, p.current, 1, from, to, x509.ExtKeyUsageServerAuth, clientAuth), nil, now, "", p.current},
		{"through a bundle's intermediate", p.leaf(t, p.bundleInter, 1, from, to, clientAuth), []*x509.Certificate{p.bundleInter}, now, "", p.bundle},
		{"intermediate not sent", p.leaf(t, p.bundleInter, 1, from, to, clientAuth), nil, now, CauseUnknownCA, nil},
		{"untrusted CA", p.leaf(t, p.untrusted, 1, from, to, clientAuth), nil, now, CauseUnknownCA, nil},
		{"untrusted and expired", p.leaf(t, p.untrusted, 1, from, now.Add(-time.Minute), clientAuth), nil, now, CauseUnknownCA, nil},
		{"untrusted and revoked", p.leaf(t, p.untrusted, 7, from, to, clientAuth), nil, now, CauseUnknownCA, nil},
		{"expired", p.leaf(t, p.current, 1, from, now.Add(-time.Second), clientAuth), nil, now, CauseExpired, p.current},
		{"not yet valid", p.leaf(t, p.current, 1, now.Add(time.Minute), to, clientAuth), nil, now, CauseExpired, p.current},
		{"CA expired", p.leaf(t, p.expiredCA, 1, from, to, clientAuth), nil, now, CauseExpired, p.expiredCA},
		{"server usage only", p.leaf(t, p.current, 1, from, to, x509.ExtKeyUsageServerAuth), nil, now, CauseBadUsage, p.current},
		{"no extended key usage", p.leaf(t, p.current, 1, from, to), nil, now, CauseBadUsage, p.current},
		{"intermediate forbids clientAuth", p.leaf(t, p.serverOnly, 1, from, to, clientAuth), []*x509.Certificate{p.serverOnly}, now, CauseBadUsage, p.current},
		{"the CA itself", p.current, nil, now, CauseBadUsage, p.current},
		{"revoked", p.leaf(t, p.current, 7, from, to, clientAuth), nil, now, CauseRevoked, p.current},
		{"revoked beats expired", p.leaf(t, p.current, 7, from, now.Add(-time.Second), clientAuth), nil, now, CauseRevoked, p.current},
		{"revoked beats bad usage", p.leaf(t, p.current, 7, from, to, x509.ExtKeyUsageServerAuth), nil, now, CauseRevoked, p.current},
		{"previous CA before retiring", p.leaf(t, p.previous, 1, from, to, clientAuth), nil, now, "", p.previous},
		{"previous CA retired", p.leaf(t, p.previous, 1, from, to, clientAuth), nil, p.retire, CauseRetiredCA, p.previous},
		{"retired beats revoked", p.leaf(t, p.previous, 7, from, to, clientAuth), nil, p.retire, CauseRetiredCA, p.previous},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := VerifyClient(tc.leaf, tc.intermediates, p.trust, revoked, tc.at)
			assert.Equal(t, tc.cause, v.Cause)
			if tc.ca == nil {
				assert.Nil(t, v.CA)
			} else if assert.NotNil(t, v.CA) {
				assert.Equal(t, tc.ca.Subject.CommonName, v.CA.Subject.CommonName)
			}
			assert.Equal(t, tc.cause, v.Recheck(tc.at, revoked), "Recheck agrees at the same time")
		})
	}
	t.Run("no trust", func(t *testing.T) {
		t.Parallel()
		assert.Equal(t, CauseUnknownCA, VerifyClient(p.leaf(t, p.current, 1, from, to, clientAuth), nil, nil, nil, now).Cause)
	})
}

// TestRecheck: a verified connection's next request is judged again as
// time passes, a CA retires and serials are revoked, without a reload.
func TestRecheck(t *testing.T) {
	t.Parallel()
	p := newVerifyPKI(t)
	leaf := p.leaf(t, p.previous, 9, p.now.Add(-time.Hour), p.now.Add(2*time.Hour), x509.ExtKeyUsageClientAuth)
	v := VerifyClient(leaf, nil, p.trust, nil, p.now)
	require.Equal(t, Cause(""), v.Cause)
	assert.Equal(t, Cause(""), v.Recheck(p.now, nil))
	assert.Equal(t, Cause(""), v.Recheck(p.now, revokedSet(1, 2)))
	assert.Equal(t, CauseRevoked, v.Recheck(p.now, revokedSet(9)))
	assert.Equal(t, Cause(""), v.Recheck(p.retire.Add(-time.Nanosecond), nil))
	assert.Equal(t, CauseRetiredCA, v.Recheck(p.retire, nil), "retired by time, no reload")

	current := p.leaf(t, p.current, 9, p.now.Add(-time.Hour), p.now.Add(2*time.Hour), x509.ExtKeyUsageClientAuth)
	v = VerifyClient(current, nil, p.trust, nil, p.now)
	require.Equal(t, Cause(""), v.Cause)
	assert.Equal(t, Cause(""), v.Recheck(p.now.Add(2*time.Hour), nil), "valid through its NotAfter second")
	assert.Equal(t, CauseExpired, v.Recheck(p.now.Add(2*time.Hour+time.Second), nil))

	bad := VerifyClient(p.leaf(t, p.untrusted, 1, p.now, p.now.Add(time.Hour), x509.ExtKeyUsageClientAuth), nil, p.trust, nil, p.now)
	assert.Equal(t, CauseUnknownCA, bad.Recheck(p.now, nil), "a refused certificate stays refused")
}

// TestRecheckAllocs pins the per-request cost of a verified connection:
// no allocation.
func TestRecheckAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts need a build without -race")
	}
	p := newVerifyPKI(t)
	v := VerifyClient(p.leaf(t, p.current, 9, p.now.Add(-time.Hour), p.now.Add(time.Hour), x509.ExtKeyUsageClientAuth), nil, p.trust, nil, p.now)
	require.Equal(t, Cause(""), v.Cause)
	revoked := revokedSet(1, 2, 3)
	allocs := testing.AllocsPerRun(1000, func() {
		if v.Recheck(p.now, revoked) != "" {
			panic("refused")
		}
	})
	assert.Zero(t, allocs)
}

// TestNewTrustSet: a CA given twice is one anchor with the latest retire
// time, never retiring being the latest.
func TestNewTrustSet(t *testing.T) {
	t.Parallel()
	p := newVerifyPKI(t)
	later := p.retire.Add(time.Hour)
	ts := NewTrustSet(Anchor{Cert: p.previous, RetireAt: p.retire}, Anchor{Cert: p.previous, RetireAt: later})
	require.Len(t, ts.Anchors(), 1)
	assert.Equal(t, later, ts.Anchors()[0].RetireAt)
	ts = NewTrustSet(Anchor{Cert: p.previous, RetireAt: p.retire}, Anchor{Cert: p.previous})
	assert.True(t, ts.Anchors()[0].RetireAt.IsZero())
	ts = NewTrustSet(Anchor{Cert: p.previous}, Anchor{Cert: p.previous, RetireAt: p.retire})
	assert.True(t, ts.Anchors()[0].RetireAt.IsZero())
}

// TestLoadBundle: a PEM bundle's CAs, never retiring; a certificate that
// is not a CA is an error naming the file.
func TestLoadBundle(t *testing.T) {
	t.Parallel()
	p := newVerifyPKI(t)
	dir := t.TempDir()
	anchors, err := LoadBundle(writePEM(t, dir, "bundle.pem", "CERTIFICATE", p.bundle.Raw, p.current.Raw))
	require.NoError(t, err)
	require.Len(t, anchors, 2)
	assert.True(t, anchors[1].Cert.Equal(p.current))
	leaf := p.leaf(t, p.current, 1, p.now, p.now.Add(time.Hour))
	path := writePEM(t, dir, "mixed.pem", "CERTIFICATE", p.bundle.Raw, leaf.Raw)
	_, err = LoadBundle(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+": certificate 2 (CN=client): not a CA certificate")
}

func BenchmarkVerifyClient(b *testing.B) {
	p := newVerifyPKI(b)
	leaf := p.leaf(b, p.current, 9, p.now.Add(-time.Hour), p.now.Add(time.Hour), x509.ExtKeyUsageClientAuth)
	revoked := revokedSet(1, 2, 3)
	b.ReportAllocs()
	for b.Loop() {
		if VerifyClient(leaf, nil, p.trust, revoked, p.now).Cause != "" {
			b.Fatal("refused")
		}
	}
}

func BenchmarkRecheck(b *testing.B) {
	p := newVerifyPKI(b)
	v := VerifyClient(p.leaf(b, p.current, 9, p.now.Add(-time.Hour), p.now.Add(time.Hour), x509.ExtKeyUsageClientAuth), nil, p.trust, nil, p.now)
	revoked := revokedSet(1, 2, 3)
	b.ReportAllocs()
	for b.Loop() {
		if v.Recheck(p.now, revoked) != "" {
			b.Fatal("refused")
		}
	}
}
