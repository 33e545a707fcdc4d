package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/acme"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/router"
)

// certsSpace is a space with app shop on tls: auto (two domains) and app
// blog on certificate files, its acme storage in dir. The acme section's
// YAML decoding comes with the config loader; until then the tests load
// this value.
func certsSpace(dir, directory string) *config.Config {
	return &config.Config{
		ACME: &config.ACME{
			Directory:    directory,
			Email:        "ops@example.com",
			AgreeTOS:     true,
			TrustedRoots: filepath.Join(dir, "shop.pem"),
			Storage:      filepath.Join(dir, "acme"),
			RenewBefore:  720 * time.Hour,
		},
		Apps: []config.App{
			{Name: "shop", Domains: []string{"shop.example.com", "www.shop.example.com"}, TLSAuto: true},
			{Name: "blog", Domains: []string{"blog.example.com"}, TLS: []config.Cert{{Cert: "blog.pem", Key: "blog-key.pem"}}},
		},
	}
}

// certs runs spacerouter certs with args and the config cfg (or the
// loader's error err).
func certs(t *testing.T, cfg *config.Config, err error, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	load := func(string) (*config.Config, error) { return cfg, err }
	code := runCerts(args, &stdout, &stderr, load)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// TestCertsStatus: what a router left in acme.storage, as an operator
// reads it: shop.example.com's certificate (verify-full with
// acme.trusted_roots), www.shop.example.com failing with the running
// Manager's last error.
func TestCertsStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notAfter := time.Now().Add(60 * 24 * time.Hour).UTC().Truncate(time.Second)
	writeCert(t, dir, "shop", notAfter, "shop.example.com")
	// A directory that refuses connections: every order fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	directory := "https://" + ln.Addr().String() + "/dir"
	ln.Close()
	cfg := certsSpace(dir, directory)

	// shop.example.com's certificate, key and metadata where certmagic
	// keeps them.
	storage := &certmagic.FileStorage{Path: cfg.ACME.Storage}
	issuer := (&certmagic.ACMEIssuer{CA: directory}).IssuerKey()
	for key, file := range map[string]string{
		certmagic.StorageKeys.SiteCert(issuer, "shop.example.com"):       "shop.pem",
		certmagic.StorageKeys.SitePrivateKey(issuer, "shop.example.com"): "shop-key.pem",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		require.NoError(t, storage.Store(context.Background(), key, b))
	}
	require.NoError(t, storage.Store(context.Background(), certmagic.StorageKeys.SiteMeta(issuer, "shop.example.com"),
		[]byte(`{"sans":["shop.example.com"],"issuer_data":{}}`)))

	// A Manager serves it and fails to order www's, then stops.
	opts := router.ACMEOptions(cfg.ACME)
	opts.ListenAddr = "127.0.0.1:8443"
	m, err := acme.New(opts, nil)
	require.NoError(t, err)
	require.NoError(t, m.SetDomains(map[string][]string{"shop": cfg.Apps[0].Domains}))
	deadline := time.Now().Add(20 * time.Second)
	for tick := time.Tick(20 * time.Millisecond); ; <-tick {
		st := m.Status()
		if st[0].State == acme.StateOK && st[1].State == acme.StateFailing {
			break
		}
		require.True(t, time.Now().Before(deadline), "waiting for the Manager's orders: %+v", st)
	}
	m.Stop()

	res := certs(t, cfg, nil, "status", "-config", "space.yaml")
	require.Equal(t, exitOK, res.code, "certs status: %s", res.stderr)
	assert.Empty(t, res.stderr)
	lines := regexp.MustCompile(`\n`).Split(res.stdout, -1)
	require.Len(t, lines, 4, "header, two domains, end: %q", res.stdout)
	assert.Regexp(t, `^APP +DOMAIN +STATE +NOT_AFTER +ISSUER +VERIFY_FULL +LAST_ERROR$`, lines[0])
	assert.Regexp(t, `^shop +shop\.example\.com +ok +`+regexp.QuoteMeta(notAfter.Format(time.RFC3339))+` +shop\.example\.com +yes +-$`, lines[1])
	assert.Regexp(t, `^shop +www\.shop\.example\.com +failing +- +- +no +.*connection refused`, lines[2])

	t.Run("-app and -json", func(t *testing.T) {
		res := certs(t, cfg, nil, "status", "-config", "space.yaml", "-app", "shop", "-json")
		require.Equal(t, exitOK, res.code, "certs status -json: %s", res.stderr)
		var got []acme.DomainStatus
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &got), res.stdout)
		require.Len(t, got, 2)
		assert.Equal(t, acme.DomainStatus{App: "shop", Domain: "shop.example.com", State: acme.StateOK, NotAfter: notAfter,
			Issuer: "shop.example.com", VerifyFull: true, UpdatedAt: got[0].UpdatedAt}, got[0])
		assert.Equal(t, acme.StateFailing, got[1].State)
	})
	t.Run("without trusted_roots, the system's roots do not verify a private chain", func(t *testing.T) {
		noRoots := *cfg.ACME
		noRoots.TrustedRoots = ""
		c := *cfg
		c.ACME = &noRoots
		res := certs(t, &c, nil, "status", "-config", "space.yaml")
		require.Equal(t, exitOK, res.code, res.stderr)
		assert.Regexp(t, `(?m)^shop +shop\.example\.com +ok +\S+ +shop\.example\.com +no +-$`, res.stdout)
	})
}

func TestCertsUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCert(t, dir, "shop", time.Now().Add(time.Hour), "shop.example.com")
	cfg := certsSpace(dir, "https://acme.example.com/directory")
	noACME := &config.Config{Apps: cfg.Apps}
	for _, tc := range []struct {
		name   string
		cfg    *config.Config
		err    error
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", cfg, nil, nil, exitUsage, "Usage:\n  spacerouter certs status"},
		{"help", cfg, nil, []string{"-help"}, exitOK, "Usage:"},
		{"unknown subcommand", cfg, nil, []string{"renew"}, exitUsage, `unknown subcommand "renew": want status`},
		{"no -config", cfg, nil, []string{"status"}, exitUsage, "-config is required"},
		{"extra argument", cfg, nil, []string{"status", "-config", "f", "x"}, exitUsage, `unexpected argument "x"`},
		{"bad config", nil, errors.New("space.yaml: unreadable"), []string{"status", "-config", "space.yaml"}, exitUsage, "spacerouter: space.yaml: unreadable"},
		{"no acme", noACME, nil, []string{"status", "-config", "space.yaml"}, exitUsage, "space.yaml has no acme section"},
		{"unknown app", cfg, nil, []string{"status", "-config", "space.yaml", "-app", "nope"}, exitUsage, `unknown app "nope": the apps are shop, blog`},
		{"app on files", cfg, nil, []string{"status", "-config", "space.yaml", "-app", "blog"}, exitUsage, "app blog does not use tls: auto"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := certs(t, tc.cfg, tc.err, tc.args...)
			assert.Equal(t, tc.code, res.code, "stderr: %s", res.stderr)
			assert.Contains(t, res.stderr, tc.stderr)
			assert.Empty(t, res.stdout)
		})
	}
	t.Run("nothing in storage yet: waiting", func(t *testing.T) {
		res := certs(t, cfg, nil, "status", "-config", "space.yaml")
		require.Equal(t, exitOK, res.code, res.stderr)
		assert.Regexp(t, `(?m)^shop +www\.shop\.example\.com +waiting +- +- +no +-$`, res.stdout)
	})
	t.Run("run dispatches certs", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, exitUsage, run([]string{"certs"}, &stdout, &stderr))
		assert.Contains(t, stderr.String(), "spacerouter certs status -config FILE")
	})
}
