package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/spaceca"
)

// caSpace is a space with a CA: app shop serves a certificate, app blog
// serves none.
const caSpace = `space: my-space
listen:
  http: 127.0.0.1:0
apps:
  - name: shop
    domains: [shop.example.com]
    tls:
      - cert: shop.pem
        key: shop-key.pem
  - name: blog
    domains: [blog.example.com]
space_ca:
  cert: ca/space.pem
  key: ca/space-key.pem
  state_dir: state
`

// caDir writes caSpace and shop's certificate into a new directory and
// returns it and the config path.
func caDir(t *testing.T) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	writeCert(t, dir, "shop", time.Now().AddDate(1, 0, 0), "shop.example.com")
	writeFile(t, dir, "space.yaml", caSpace)
	return dir, filepath.Join(dir, "space.yaml")
}

// ca runs spacerouter ca with args, as run does.
func ca(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runCA(args, &stdout, &stderr, loadForCA)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// lastWord is the last word of out.
func lastWord(out string) string {
	f := strings.Fields(out)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// TestCA: init, issue, list, download, revoke, as an operator runs them.
func TestCA(t *testing.T) {
	t.Parallel()
	dir, cfg := caDir(t)

	res := ca(t, "init", "-config", cfg)
	require.Equal(t, exitOK, res.code, "ca init: %s", res.stderr)
	assert.Contains(t, res.stdout, `made the space CA "my-space space CA": certificate `+filepath.Join(dir, "ca", "space.pem"))
	assert.FileExists(t, filepath.Join(dir, "ca", "space-key.pem"))

	res = ca(t, "issue", "-config", cfg, "-app", "shop", "-name", "laptop")
	require.Equal(t, exitOK, res.code, "ca issue: %s", res.stderr)
	id := lastWord(res.stdout)
	assert.Regexp(t, `^[0-9a-f]{16}$`, id, "the id is the last word of %q", res.stdout)
	assert.Empty(t, res.stderr)
	res = ca(t, "issue", "-config", cfg, "-app", "blog")
	require.Equal(t, exitOK, res.code, "ca issue: %s", res.stderr)
	blogID := lastWord(res.stdout)

	res = ca(t, "list", "-config", cfg)
	require.Equal(t, exitOK, res.code, "ca list: %s", res.stderr)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 3, "a header and one line per certificate:\n%s", res.stdout)
	assert.Equal(t, []string{"ID", "APP", "NAME", "CREATED", "NOT_AFTER", "STATUS"}, strings.Fields(lines[0]))
	byID := map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		require.Len(t, f, 6, l)
		byID[f[0]] = f
	}
	require.Contains(t, byID, id)
	assert.Equal(t, []string{"shop", "laptop"}, byID[id][1:3])
	assert.Equal(t, "ready", byID[id][5])
	created, err := time.Parse(time.RFC3339, byID[id][3])
	require.NoError(t, err)
	assert.Equal(t, created.AddDate(0, 13, 0).Format(time.RFC3339), byID[id][4], "13 months")
	assert.Equal(t, []string{"blog", "blog"}, byID[blogID][1:3], "the name defaults to the app's")

	res = ca(t, "list", "-config", cfg, "-app", "blog")
	require.Equal(t, exitOK, res.code, "ca list -app: %s", res.stderr)
	assert.Len(t, strings.Split(strings.TrimSpace(res.stdout), "\n"), 2)

	out := filepath.Join(dir, "out")
	res = ca(t, "download", "-config", cfg, "-id", id, "-dir", out, "-prefix", "demo_")
	require.Equal(t, exitOK, res.code, "ca download: %s", res.stderr)
	assert.Equal(t, "wrote "+strings.Join([]string{filepath.Join(out, "demo_client.crt"), filepath.Join(out, "demo_client.key"),
		filepath.Join(out, "demo_client.pk8"), filepath.Join(out, "demo_root.crt")}, ", ")+"\n", res.stdout)
	root, err := os.ReadFile(filepath.Join(out, "demo_root.crt"))
	require.NoError(t, err)
	served, err := os.ReadFile(filepath.Join(dir, "shop.pem"))
	require.NoError(t, err)
	assert.Equal(t, string(served), string(root), "root.crt is shop's self-signed certificate")
	if openssl, err := exec.LookPath("openssl"); err == nil {
		want, err := exec.Command(openssl, "pkcs8", "-topk8", "-outform", "DER", "-nocrypt", "-in", filepath.Join(out, "demo_client.key")).Output()
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(out, "demo_client.pk8"))
		require.NoError(t, err)
		assert.Equal(t, want, got, "client.pk8 is what openssl makes of client.key")
	}

	res = ca(t, "download", "-config", cfg, "-id", id, "-dir", out, "-prefix", "demo_")
	assert.Equal(t, exitFail, res.code)
	assert.Equal(t, "spacerouter ca download: "+filepath.Join(out, "demo_client.crt")+" already exists: refusing to overwrite it: file already exists\n", res.stderr)

	res = ca(t, "revoke", "-config", cfg, "-id", id)
	require.Equal(t, exitOK, res.code, "ca revoke: %s", res.stderr)
	assert.Equal(t, "revoked "+id+" (app shop, name laptop): a running router refuses it within 2 seconds\n", res.stdout)
	res = ca(t, "revoke", "-config", cfg, "-id", id)
	require.Equal(t, exitOK, res.code, "ca revoke again: %s", res.stderr)
	assert.Contains(t, res.stdout, id+" (app shop, name laptop) was already revoked on ")
	res = ca(t, "list", "-config", cfg, "-app", "shop")
	require.Equal(t, exitOK, res.code)
	assert.Equal(t, "revoked", lastWord(res.stdout))
}

// TestCAErrors: each bad input gets exit code 2 (or 1 for a refused
// operation) and one line naming the file, app or id.
func TestCAErrors(t *testing.T) {
	t.Parallel()
	dir, cfg := caDir(t)
	require.Equal(t, exitOK, ca(t, "init", "-config", cfg).code)
	res := ca(t, "issue", "-config", cfg, "-app", "blog")
	require.Equal(t, exitOK, res.code, res.stderr)
	blogID := lastWord(res.stdout)
	keyPath := filepath.Join(dir, "ca", "space-key.pem")

	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"init over the CA", []string{"init", "-config", cfg}, exitFail,
			keyPath + " already exists: refusing to overwrite it"},
		{"unknown app", []string{"issue", "-config", cfg, "-app", "nope"}, exitUsage,
			`spacerouter ca issue: unknown app "nope": ` + cfg + " has apps shop, blog"},
		{"unknown app to list", []string{"list", "-config", cfg, "-app", "nope"}, exitUsage, `unknown app "nope"`},
		{"bad name", []string{"issue", "-config", cfg, "-app", "shop", "-name", "my laptop"}, exitUsage,
			`spacerouter ca issue: -name: name "my laptop": use 1 to 64 of A-Z a-z 0-9 . _ - @`},
		{"no -app", []string{"issue", "-config", cfg}, exitUsage, "spacerouter ca issue: -app is required"},
		{"no -config", []string{"list"}, exitUsage, "spacerouter ca list: -config is required"},
		{"stray argument", []string{"list", "-config", cfg, "shop"}, exitUsage, `spacerouter ca list: unexpected argument "shop"`},
		{"unknown id to download", []string{"download", "-config", cfg, "-id", "0123456789abcdef", "-dir", t.TempDir()}, exitUsage,
			`spacerouter ca download: unknown client certificate id "0123456789abcdef"`},
		{"unknown id to revoke", []string{"revoke", "-config", cfg, "-id", "nope"}, exitUsage,
			`spacerouter ca revoke: unknown client certificate id "nope"`},
		{"download for an app without tls", []string{"download", "-config", cfg, "-id", blogID, "-dir", t.TempDir()}, exitUsage,
			"spacerouter ca download: app blog has no tls certificate"},
		{"unknown subcommand", []string{"sign", "-config", cfg}, exitUsage, `spacerouter ca: unknown subcommand "sign"`},
		{"no subcommand", nil, exitUsage, "Usage:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := ca(t, tc.args...)
			assert.Equal(t, tc.code, res.code, "exit code; stderr:\n%s", res.stderr)
			assert.Contains(t, res.stderr, tc.stderr)
			assert.Empty(t, res.stdout)
		})
	}
}

// TestCABadCA: a CA that cannot be used is a config error naming the file.
func TestCABadCA(t *testing.T) {
	t.Parallel()
	dir, cfg := caDir(t)
	res := ca(t, "list", "-config", cfg)
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, cfg+":13: space_ca.cert: stat "+filepath.Join(dir, "ca", "space.pem")+": no such file or directory: make the CA with spacerouter ca init -config "+cfg)

	require.Equal(t, exitOK, ca(t, "init", "-config", cfg).code)
	other := t.TempDir()
	_, err := spaceca.Init(filepath.Join(other, "ca.pem"), filepath.Join(other, "ca-key.pem"), "other")
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(other, "ca-key.pem"))
	require.NoError(t, err)
	keyPath := filepath.Join(dir, "ca", "space-key.pem")
	require.NoError(t, os.WriteFile(keyPath, data, 0o600))
	res = ca(t, "issue", "-config", cfg, "-app", "shop")
	assert.Equal(t, exitUsage, res.code)
	assert.Equal(t, cfg+":14: space_ca.key: the key in \""+keyPath+"\" does not match the certificate in \""+filepath.Join(dir, "ca", "space.pem")+"\": want the CA certificate's own private key\n", res.stderr)
	assert.NoDirExists(t, filepath.Join(dir, "state", "clients"), "nothing issued")
}

// TestCANoSpaceCA: through run, and through the binary, a config without
// space_ca says to add it.
func TestCANoSpaceCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "space.yaml", "space: my-space\nlisten:\n  http: 127.0.0.1:0\napps:\n  - name: shop\n    domains: [shop.example.com]\n")
	cfg := filepath.Join(dir, "space.yaml")
	for _, sub := range [][]string{{"init"}, {"issue", "-app", "shop"}, {"list"}, {"download", "-id", "0123456789abcdef", "-dir", dir}, {"revoke", "-id", "0123456789abcdef"}} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"ca", sub[0], "-config", cfg}, sub[1:]...), &stdout, &stderr)
		assert.Equal(t, exitUsage, code, "ca %s", sub[0])
		assert.Equal(t, "spacerouter ca "+sub[0]+": "+cfg+" has no space_ca: add space_ca with cert, key and state_dir (docs/config.md)\n", stderr.String())
	}
	res := runBinary(t, dir, "ca", "list", "-config", "space.yaml")
	assert.Equal(t, exitUsage, res.code)
	assert.Equal(t, "spacerouter ca list: space.yaml has no space_ca: add space_ca with cert, key and state_dir (docs/config.md)\n", res.stderr)
	res = runBinary(t, dir, "ca", "-help")
	assert.Equal(t, exitOK, res.code)
	assert.Contains(t, res.stderr, "spacerouter ca issue -config FILE -app APP [-name N]")
}

// TestCADownloadACME: for a tls: auto app, root.crt holds the root the
// ACME chain a router left in acme.storage verifies to (SPEC.md 11.3);
// with none there yet, the download says why and writes nothing.
func TestCADownloadACME(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCert(t, dir, "shop", time.Now().AddDate(0, 3, 0), "shop.example.com")
	directory := "https://127.0.0.1:14000/dir"
	writeFile(t, dir, "space.yaml", `space: my-space
listen:
  https: 127.0.0.1:0
acme:
  directory: `+directory+`
  agree_tos: true
  storage: acme
  trusted_roots: shop.pem
apps:
  - name: shop
    domains: [shop.example.com]
    tls: auto
space_ca:
  cert: ca/space.pem
  key: ca/space-key.pem
  state_dir: state
`)
	cfg := filepath.Join(dir, "space.yaml")
	require.Equal(t, exitOK, ca(t, "init", "-config", cfg).code)
	res := ca(t, "issue", "-config", cfg, "-app", "shop")
	require.Equal(t, exitOK, res.code, res.stderr)
	id := lastWord(res.stdout)

	out := filepath.Join(dir, "out")
	res = ca(t, "download", "-config", cfg, "-id", id, "-dir", out)
	assert.Equal(t, exitFail, res.code, res.stderr)
	assert.Contains(t, res.stderr, "spacerouter ca download: app shop uses tls: auto: no root for the ACME certificates of [shop.example.com]: no certificate obtained yet")
	assert.NoFileExists(t, filepath.Join(out, "client.key"))

	chain, err := os.ReadFile(filepath.Join(dir, "shop.pem"))
	require.NoError(t, err)
	storage := &certmagic.FileStorage{Path: filepath.Join(dir, "acme")}
	key := certmagic.StorageKeys.SiteCert((&certmagic.ACMEIssuer{CA: directory}).IssuerKey(), "shop.example.com")
	require.NoError(t, storage.Store(context.Background(), key, chain))
	res = ca(t, "download", "-config", cfg, "-id", id, "-dir", out)
	require.Equal(t, exitOK, res.code, res.stderr)
	root, err := os.ReadFile(filepath.Join(out, "root.crt"))
	require.NoError(t, err)
	assert.Equal(t, string(chain), string(root), "the chain's root, as acme.trusted_roots holds it")
}
