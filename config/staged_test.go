package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stagedConfig is a config whose app shop, on shop.example.com and
// *.shop.example.com, has the certificate current.pem and the tls items
// staged (indented six spaces), from line 8.
func stagedConfig(staged string) string {
	return `listen: {https: ":0"}
apps:
  - name: shop
    domains: [shop.example.com, "*.shop.example.com"]
    tls:
      - cert: current.pem
        key: current-key.pem
` + staged
}

func TestServeFrom(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	names := []string{"shop.example.com", "*.shop.example.com"}
	writeCert(t, dir, "current.pem", "current-key.pem", names...)
	// The next certificate is valid from next week, and staged from then.
	writeCertValid(t, dir, "next.pem", "next-key.pem", now.AddDate(0, 0, 7), now.AddDate(1, 0, 0), names...)
	// The old certificate was replaced a day ago and has expired since.
	writeCertValid(t, dir, "old.pem", "old-key.pem", now.AddDate(-1, 0, 0), now.Add(-time.Hour), names...)
	next := now.AddDate(0, 0, 7).Truncate(time.Second).Add(time.Second).UTC()
	past := now.AddDate(0, 0, -1).Truncate(time.Second).UTC()
	path := filepath.Join(dir, "space.yaml")
	src := stagedConfig("      - {cert: next.pem, key: next-key.pem, serve_from: " + next.Format(time.RFC3339) + "}\n" +
		"      - {cert: old.pem, key: old-key.pem, serve_from: \"" + past.In(time.FixedZone("", -5*3600)).Format(time.RFC3339) + "\"}\n")
	c, err := Parse(path, []byte(src))
	require.NoError(t, err, "config:\n%s", src)
	require.Len(t, c.Apps[0].TLS, 3)
	assert.True(t, c.Apps[0].TLS[0].ServeFrom.IsZero())
	assert.True(t, next.Equal(c.Apps[0].TLS[1].ServeFrom), "serve_from %v, want %v", c.Apps[0].TLS[1].ServeFrom, next)
	assert.True(t, past.Equal(c.Apps[0].TLS[2].ServeFrom), "serve_from %v, want %v", c.Apps[0].TLS[2].ServeFrom, past)
	// Staged for later, next.pem is not "not valid yet"; current since a
	// day ago, old.pem gets the warning of any served certificate.
	assert.Equal(t, []string{
		path + `:9: apps[0].tls[2].cert: certificate expired on ` + now.Add(-time.Hour).UTC().Format(time.DateOnly),
	}, c.Warnings(), "config:\n%s", src)
}

func TestServeFromProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	writeCert(t, dir, "current.pem", "current-key.pem", "shop.example.com", "*.shop.example.com")
	writeCertValid(t, dir, "shop.pem", "shop-key.pem", now.Add(-time.Hour), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), "shop.example.com")
	writeCertValid(t, dir, "short.pem", "short-key.pem", now.Add(-time.Hour), time.Date(2098, 12, 31, 0, 0, 0, 0, time.UTC),
		"shop.example.com", "*.shop.example.com")
	writeCertValid(t, dir, "late.pem", "late-key.pem", time.Date(2099, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		"shop.example.com", "*.shop.example.com")
	cases := []struct {
		name, staged string
		want         []string // DIR for the directory
	}{
		{"names", "      - {cert: shop.pem, key: shop-key.pem, serve_from: 2099-01-01T00:00:00Z}\n", []string{
			`DIR/space.yaml:8: apps[0].tls[1].cert: the staged certificate for shop.example.com does not cover "*.shop.example.com": ` +
				`from serve_from on it is served instead of the app's ECDSA chains with no or an earlier serve_from, so it must cover every domain of the app`}},
		{"names, serve_from past", "      - {cert: shop.pem, key: shop-key.pem, serve_from: 2020-01-01T00:00:00Z}\n", []string{
			`DIR/space.yaml:8: apps[0].tls[1].cert: the staged certificate for shop.example.com does not cover "*.shop.example.com": ` +
				`from serve_from on it is served instead of the app's ECDSA chains with no or an earlier serve_from, so it must cover every domain of the app`}},
		{"key", "      - {cert: shop.pem, key: current-key.pem, serve_from: 2099-01-01T00:00:00Z}\n", []string{
			// The text after "loading certificate and key: " comes from crypto/tls.
			`DIR/space.yaml:8: apps[0].tls[1].cert: loading certificate and key: tls: private key does not match public key`}},
		{"expires before serve_from", "      - {cert: short.pem, key: short-key.pem, serve_from: 2099-01-01T00:00:00+01:00}\n", []string{
			`DIR/space.yaml:8: apps[0].tls[1].cert: the staged certificate expires at 2098-12-31T00:00:00Z, before its serve_from 2098-12-31T23:00:00Z: ` +
				`want a certificate still valid when it is served`}},
		{"valid after serve_from", "      - cert: late.pem\n        key: late-key.pem\n        serve_from: 2099-01-01T00:00:00Z\n", []string{
			`DIR/space.yaml:8: apps[0].tls[1].cert: the staged certificate is not valid before 2099-01-02T00:00:00Z, after its serve_from 2099-01-01T00:00:00Z: ` +
				`clients would refuse it until then; want serve_from at or after its start`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := stagedConfig(tc.staged)
			_, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "DIR", dir)
			}
			assert.Equal(t, want, problems(t, err), "config:\n%s", src)
		})
	}
}
