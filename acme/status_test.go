package acme

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	ok := Options{Directory: "https://acme.example.com/directory", AgreeTOS: true, Storage: "/var/lib/acme"}
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string // "" for valid
	}{
		{"valid", func(*Options) {}, ""},
		{"loopback over http", func(o *Options) { o.Directory = "http://127.0.0.1:14000/dir" }, ""},
		{"no directory", func(o *Options) { o.Directory = "" }, "acme.directory: required"},
		{"not a URL", func(o *Options) { o.Directory = "acme.example.com" }, `acme.directory: "acme.example.com" is not an http(s) URL`},
		{"public over http", func(o *Options) { o.Directory = "http://acme.example.com/dir" }, "plain http only for a loopback or internal host"},
		{"terms not agreed", func(o *Options) { o.AgreeTOS = false }, "acme.agree_tos: must be true"},
		{"no storage", func(o *Options) { o.Storage = "" }, "acme.storage: required"},
		{"negative renew_before", func(o *Options) { o.RenewBefore = -time.Hour }, "acme.renew_before: -1h0m0s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.change(&o)
			err := o.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "roots.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	base := Options{Directory: "https://127.0.0.1:1/dir", AgreeTOS: true, Storage: filepath.Join(dir, "acme"), ListenAddr: "127.0.0.1:8443"}
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no listener", func(o *Options) { o.ListenAddr = "" }, "the https listener address is required"},
		{"listener without port", func(o *Options) { o.ListenAddr = "127.0.0.1" }, `https listener address "127.0.0.1"`},
		{"port 0", func(o *Options) { o.ListenAddr = "127.0.0.1:0" }, "want a port from 1 to 65535"},
		{"roots missing", func(o *Options) { o.TrustedRootsFile = filepath.Join(dir, "none.pem") }, "acme.trusted_roots: open"},
		{"roots not PEM", func(o *Options) { o.TrustedRootsFile = notPEM }, "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.change(&o)
			m, err := New(o, nil)
			require.Error(t, err)
			assert.Nil(t, m)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("valid: makes the storage directory 0700", func(t *testing.T) {
		m, err := New(base, nil)
		require.NoError(t, err)
		m.Stop()
		fi, err := os.Stat(base.Storage)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	})
}

func TestSetDomainsRefuses(t *testing.T) {
	t.Parallel()
	m, _ := startManager(t, downOptions(t, "https://127.0.0.1:1/dir"), nil)
	for _, tc := range []struct {
		name  string
		byApp map[string][]string
		want  string
	}{
		{"wildcard", map[string][]string{"shop": {"*.shop.test"}}, "a wildcard needs DNS-01"},
		{"IP address", map[string][]string{"shop": {"192.0.2.1"}}, "an IP address has no SNI name"},
		{"empty", map[string][]string{"shop": {""}}, "empty domain"},
		{"twice", map[string][]string{"shop": {"a.test", "A.test."}}, "domain a.test listed twice"},
		{"not a name", map[string][]string{"shop": {"a b.test"}}, "is not a domain name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.SetDomains(tc.byApp)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, m.Status(), "a refused set changes nothing")
		})
	}
}

func TestRenewalRatio(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	assert.InDelta(t, 1.0/3, renewalRatio(720*time.Hour, 90*day), 1e-9, "30 of 90 days")
	assert.InDelta(t, 0.5, renewalRatio(720*time.Hour, 6*day), 1e-9, "a 6-day certificate renews halfway")
	assert.InDelta(t, 0.5, renewalRatio(time.Hour, 12*time.Second), 1e-9)
	assert.InDelta(t, 1.0/9, renewalRatio(240*time.Hour, 0), 1e-9, "no lifetime yet: 90 days")
}

func TestChallengeConfig(t *testing.T) {
	t.Parallel()
	m, _ := startManager(t, downOptions(t, "https://127.0.0.1:1/dir"), nil)
	require.NoError(t, m.SetDomains(map[string][]string{"shop": {"shop.test"}}))
	cfg, ok := m.ChallengeConfig(hello("Shop.Test.", ALPNProto))
	require.True(t, ok, "a validation of a managed domain")
	assert.Equal(t, []string{ALPNProto}, cfg.NextProtos)
	for _, tc := range []struct {
		name  string
		hello func() (string, []string)
	}{
		{"not managed", func() (string, []string) { return "other.test", []string{ALPNProto} }},
		{"no ALPN", func() (string, []string) { return "shop.test", nil }},
		{"another protocol too", func() (string, []string) { return "shop.test", []string{"h2", ALPNProto} }},
		{"no SNI", func() (string, []string) { return "", []string{ALPNProto} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, protos := tc.hello()
			_, ok := m.ChallengeConfig(hello(name, protos...))
			assert.False(t, ok)
		})
	}
}

func TestWriteStatus(t *testing.T) {
	t.Parallel()
	na := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	var b bytes.Buffer
	require.NoError(t, WriteStatus(&b, []DomainStatus{
		{App: "shop", Domain: "shop.example.com", State: StateOK, NotAfter: na, Issuer: "R11", VerifyFull: true},
		{App: "shop", Domain: "www.shop.example.com", State: StateFailing, LastError: "no\nway"},
	}))
	assert.Equal(t, ""+
		"APP   DOMAIN                STATE    NOT_AFTER             ISSUER  VERIFY_FULL  LAST_ERROR\n"+
		"shop  shop.example.com      ok       2026-03-01T11:00:00Z  R11     yes          -\n"+
		"shop  www.shop.example.com  failing  -                     -       no           no way\n", b.String())
}

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal([]DomainStatus{
		{App: "shop", Domain: "a.test", State: StateWaiting},
		{App: "shop", Domain: "b.test", State: StateOK, NotAfter: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Issuer: "R11", VerifyFull: true,
			UpdatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	})
	require.NoError(t, err)
	assert.JSONEq(t, `[
		{"app":"shop","domain":"a.test","state":"waiting","verify_full":false},
		{"app":"shop","domain":"b.test","state":"ok","not_after":"2026-03-01T00:00:00Z","issuer":"R11","verify_full":true,"updated_at":"2026-01-01T00:00:00Z"}
	]`, string(b))
}

// TestStatusFromStorage reads a storage laid out as certmagic lays it,
// with a status file a router left.
func TestStatusFromStorage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	caPEM, leafPEM, notAfter := testChain(t, "shop.test", now.Add(60*24*time.Hour))
	rootsFile := filepath.Join(dir, "roots.pem")
	require.NoError(t, os.WriteFile(rootsFile, caPEM, 0o600))
	opts := Options{Directory: "https://acme.example.com:14000/dir", AgreeTOS: true, Storage: filepath.Join(dir, "acme"), TrustedRootsFile: rootsFile}
	storage := &certmagic.FileStorage{Path: opts.Storage}
	ctx := context.Background()
	key := certmagic.StorageKeys.SiteCert("acme.example.com-14000-dir", "shop.test")
	require.NoError(t, storage.Store(ctx, key, leafPEM))
	require.FileExists(t, filepath.Join(opts.Storage, "certificates", "acme.example.com-14000-dir", "shop.test", "shop.test.crt"))
	updated := now.Add(-time.Minute).UTC().Truncate(time.Second)
	status, err := json.Marshal(statusFile{Domains: []DomainStatus{
		{App: "shop", Domain: "www.shop.test", State: StateFailing, LastError: "Failed to connect", UpdatedAt: updated},
		{App: "shop", Domain: "shop.test", State: StateOK},
		{App: "gone", Domain: "gone.test", State: StateOK},
	}})
	require.NoError(t, err)
	require.NoError(t, storage.Store(ctx, statusKey, status))

	apps := map[string][]string{"shop": {"shop.test", "www.shop.test"}, "blog": {"blog.test"}}
	got, err := StatusFromStorage(opts, apps, now)
	require.NoError(t, err)
	assert.Equal(t, []DomainStatus{
		{App: "blog", Domain: "blog.test", State: StateWaiting},
		{App: "shop", Domain: "shop.test", State: StateOK, NotAfter: notAfter, Issuer: "test CA", VerifyFull: true},
		{App: "shop", Domain: "www.shop.test", State: StateFailing, LastError: "Failed to connect", UpdatedAt: updated},
	}, got)

	t.Run("expired: ok in storage, verify-full fails", func(t *testing.T) {
		got, err := StatusFromStorage(opts, map[string][]string{"shop": {"shop.test"}}, notAfter.Add(time.Hour))
		require.NoError(t, err)
		assert.False(t, got[0].VerifyFull)
		assert.Contains(t, got[0].VerifyError, "expired")
	})
	t.Run("no storage yet: every domain waiting", func(t *testing.T) {
		o := opts
		o.Storage = filepath.Join(dir, "none")
		got, err := StatusFromStorage(o, map[string][]string{"shop": {"shop.test"}}, now)
		require.NoError(t, err)
		assert.Equal(t, []DomainStatus{{App: "shop", Domain: "shop.test", State: StateWaiting}}, got)
	})
	t.Run("a broken status file is an error naming it", func(t *testing.T) {
		o := opts
		o.Storage = filepath.Join(dir, "broken")
		require.NoError(t, (&certmagic.FileStorage{Path: o.Storage}).Store(ctx, statusKey, []byte("{")))
		_, err := StatusFromStorage(o, apps, now)
		require.Error(t, err)
		assert.Contains(t, err.Error(), filepath.Join(o.Storage, statusKey))
	})
}

// testChain makes a CA and a leaf for name it signs, ending at notAfter;
// it returns the CA's PEM, the leaf's PEM (as certmagic stores a chain)
// and the leaf's NotAfter as parsed.
func testChain(t *testing.T, name string, notAfter time.Time) (caPEM, leafPEM []byte, leafNotAfter time.Time) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{name},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), leaf.NotAfter
}

// TestConfigFor: certmagic renews each certificate with a window of its
// own lifetime (renew_before ahead, at most halfway); a certificate of a
// domain no longer managed gets no config (so it is never renewed).
func TestConfigFor(t *testing.T) {
	t.Parallel()
	opts := downOptions(t, "https://127.0.0.1:1/dir")
	opts.RenewBefore = 240 * time.Hour
	m, _ := startManager(t, opts, nil)
	require.NoError(t, m.SetDomains(map[string][]string{"shop": {"shop.test"}}))
	leaf := func(life time.Duration) *x509.Certificate {
		now := time.Now()
		return &x509.Certificate{NotBefore: now, NotAfter: now.Add(life - time.Second)}
	}
	for _, tc := range []struct {
		life time.Duration
		want float64
	}{
		{90 * 24 * time.Hour, 1.0 / 9},
		{30 * 24 * time.Hour, 1.0 / 3},
		{6 * 24 * time.Hour, 0.5},
	} {
		cfg, err := m.configFor(certmagic.Certificate{Certificate: tls.Certificate{Leaf: leaf(tc.life)}, Names: []string{"shop.test"}})
		require.NoError(t, err)
		assert.InDelta(t, tc.want, cfg.RenewalWindowRatio, 1e-6, "a certificate of %s", tc.life)
	}
	_, err := m.configFor(certmagic.Certificate{Certificate: tls.Certificate{Leaf: leaf(time.Hour)}, Names: []string{"gone.test"}})
	assert.ErrorIs(t, err, ErrNotManaged)
}
