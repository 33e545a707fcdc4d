package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/spaceca"
)

// logConfig is a valid config whose router lines go to target; its
// listener takes any free port, so a run that gets past the router log
// does not collide with anything.
func logConfig(target string) string {
	return fmt.Sprintf(`listen:
  http: 127.0.0.1:0
log:
  router: %q
apps:
  - name: shop
    domains: [shop.example.com]
`, target)
}

// TestCheckRouterLog: -check refuses exactly the router log targets that
// the run refuses to open, and creates or changes no file (issue 9).
func TestCheckRouterLog(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// setup makes what the case needs in dir and returns log.router.
		setup   func(t *testing.T, dir string) string
		problem string // the -check problem after "space.yaml: log.router: "; "" for none
		asRoot  bool   // whether the case holds for root, who may write anywhere
	}{
		{"missing directory", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "no", "such", "dir", "router.log")
		}, `directory "DIR/no/such/dir" does not exist: create it, or choose a path in an existing directory`, true},
		{"a directory", func(t *testing.T, dir string) string {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "logs"), 0o755))
			return filepath.Join(dir, "logs")
		}, `"DIR/logs" is a directory: want a file path, stdout or stderr`, true},
		{"parent is a file", func(t *testing.T, dir string) string {
			writeFile(t, dir, "logs", "")
			return filepath.Join(dir, "logs", "router.log")
		}, `"DIR/logs" is not a directory: want a file path in an existing directory`, true},
		{"directory not writable", func(t *testing.T, dir string) string {
			ro := filepath.Join(dir, "ro")
			require.NoError(t, os.Mkdir(ro, 0o555))
			return filepath.Join(ro, "router.log")
		}, `the directory of the router log "DIR/ro" is not writable by this user: permission denied`, false},
		{"file not writable", func(t *testing.T, dir string) string {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "router.log"), nil, 0o444))
			return filepath.Join(dir, "router.log")
		}, `opening the router log for appending: open DIR/router.log: permission denied`, false},
		{"new file in a writable directory", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "router.log")
		}, "", true},
		{"existing file", func(t *testing.T, dir string) string {
			writeFile(t, dir, "router.log", "an old line\n")
			return filepath.Join(dir, "router.log")
		}, "", true},
		{"relative path", func(t *testing.T, dir string) string {
			return "missing/router.log"
		}, `directory "missing" does not exist: create it, or choose a path in an existing directory`, true},
		{"stderr", func(t *testing.T, dir string) string { return "stderr" }, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cred := userFor(t, dir, tc.asRoot)
			target := tc.setup(t, dir)
			writeFile(t, dir, "space.yaml", logConfig(target))
			before := snapshot(t, dir)

			res := runBinaryAs(t, cred, dir, "-config", "space.yaml", "-check")
			assert.Equal(t, before, snapshot(t, dir), "-check changed the files in the directory")
			if tc.problem == "" {
				assert.Equal(t, 0, res.code, "exit code of -check; stderr:\n%s", res.stderr)
				assert.Equal(t, "space.yaml: ok\n", res.stdout)
				assert.Empty(t, res.stderr)
				return
			}
			want := "space.yaml: log.router: " + strings.ReplaceAll(tc.problem, "DIR", dir) + "\n"
			assert.Equal(t, 2, res.code, "exit code of -check; stderr:\n%s", res.stderr)
			assert.Equal(t, want, res.stderr)
			assert.Empty(t, res.stdout)

			// What -check refuses, the run refuses too: it exits before
			// serving, having failed to open the router log.
			run := runBinaryAs(t, cred, dir, "-config", "space.yaml")
			assert.Equal(t, 1, run.code, "exit code of the run; stderr:\n%s", run.stderr)
			assert.NotNil(t, findLogEntry(run.stderr, "error", "opening the router log"),
				"the run's operational log:\n%s", run.stderr)
		})
	}
}

// nobody is the user ID of nobody, whose rights are a plain user's.
const nobody = 65534

// userFor returns the user to run a case as: this process's (nil), or,
// when this process is root and the case does not hold for root (who may
// write anywhere), nobody, after opening dir and its parent to others.
func userFor(t *testing.T, dir string, asRoot bool) *syscall.Credential {
	t.Helper()
	if asRoot || os.Geteuid() != 0 {
		return nil
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	return &syscall.Credential{Uid: nobody, Gid: nobody}
}

// snapshot returns the path, mode, size and modification time of every
// file under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out[path] = fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	}))
	return out
}

// writeCert writes a self-signed ECDSA certificate for names that expires
// at notAfter, and its key, as dir/name.pem and dir/name-key.pem.
func writeCert(t *testing.T, dir, name string, notAfter time.Time, names ...string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	writeFile(t, dir, name+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, dir, name+"-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
}

// TestCheckCertificateWarnings: -check prints every warning start-up
// logs, the certificate-expiry warnings of package tlsconfig included
// (issue 9).
func TestCheckCertificateWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCert(t, dir, "shop", time.Now().Add(10*24*time.Hour), "shop.example.com")
	writeFile(t, dir, "space.yaml", `listen:
  https: 127.0.0.1:0
apps:
  - name: shop
    domains: [shop.example.com]
    tls: [{cert: shop.pem, key: shop-key.pem}]
    features: [spaces-strict-tls]
  - name: blog
    domains: [blog.example.com]
`)

	res := runBinary(t, dir, "-config", "space.yaml", "-check")
	assert.Equal(t, 0, res.code, "exit code of -check; stderr:\n%s", res.stderr)
	assert.Equal(t, "space.yaml: ok\n", res.stdout)
	var checked []string
	for line := range strings.Lines(res.stderr) {
		w, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "warning: ")
		require.True(t, ok, "a -check stderr line that is no warning: %q", line)
		checked = append(checked, w)
	}
	assert.Contains(t, checked, "space.yaml:7: apps[0].features: spaces-strict-tls is deprecated; use spaces-tls-modern")
	assert.Contains(t, checked, "space.yaml:8: apps[1].tls: no certificate: the https listener refuses this app's domains")
	expiry := "app shop: certificate shop.pem expires " + time.Now().Add(10*24*time.Hour).UTC().Format(time.DateOnly)
	assert.True(t, hasPrefix(checked, expiry), "-check warnings %q: want one starting %q", checked, expiry)

	// Start-up logs the same warnings, no more and no fewer.
	p := startBinary(t, dir, "-config", "space.yaml")
	p.waitFor(t, "the serving entry on stderr", func() bool {
		return findLogEntry(p.stderr.String(), "info", "serving") != nil
	})
	p.stop(t)
	var started []string
	for line := range strings.Lines(p.stderr.String()) {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["level"] == "warn" {
			started = append(started, e["msg"].(string))
		}
	}
	assert.ElementsMatch(t, started, checked, "warnings at start-up vs -check")
}

// hasPrefix reports whether one of lines starts with prefix.
func hasPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// TestCheckExample: the annotated example of the docs is a valid config,
// without warnings, checked as a user would from the repository root.
func TestCheckExample(t *testing.T) {
	t.Parallel()
	res := runBinary(t, filepath.Join("..", ".."), "-config", "examples/space.yaml", "-check")
	assert.Equal(t, 0, res.code, "exit code of -check examples/space.yaml; stderr:\n%s", res.stderr)
	assert.Equal(t, "examples/space.yaml: ok\n", res.stdout)
	assert.Empty(t, res.stderr, "warnings or problems of examples/space.yaml")
}

// TestCheckExampleTLS: the TLS lines examples/space.yaml has commented
// out make a valid config once uncommented, with certificates at the paths
// they name.
func TestCheckExampleTLS(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "space.yaml"))
	require.NoError(t, err)
	var b strings.Builder
	uncommented := 0
	for line := range strings.Lines(string(data)) {
		trimmed := strings.TrimSpace(line)
		for _, prefix := range []string{"# https:", "# tls:", "#   - cert:", "#     key:"} {
			if strings.HasPrefix(trimmed, prefix) {
				line = strings.Replace(line, "# ", "", 1)
				uncommented++
			}
		}
		b.WriteString(line)
	}
	require.Equal(t, 4, uncommented, "the commented TLS lines of examples/space.yaml")
	dir := t.TempDir()
	writeFile(t, dir, "space.yaml", b.String())
	require.NoError(t, os.Mkdir(filepath.Join(dir, "certs"), 0o755))
	writeCert(t, filepath.Join(dir, "certs"), "shop.example.com", time.Now().AddDate(1, 0, 0),
		"shop.example.com", "*.shop.example.com")

	res := runBinary(t, dir, "-config", "space.yaml", "-check")
	assert.Equal(t, 0, res.code, "exit code of -check with TLS on; stderr:\n%s\nconfig:\n%s", res.stderr, b.String())
	assert.Equal(t, "space.yaml: ok\n", res.stdout)
	// blog has no certificate: the example says why in its comments.
	assert.Regexp(t, `^warning: space\.yaml:\d+: apps\[1\]\.tls: no certificate: the https listener refuses this app's domains\n$`,
		res.stderr)
}

// TestDemoNotice: without -config, stderr says that the built-in demo
// space runs and how to run one's own, before the URLs (issue 9).
func TestDemoNotice(t *testing.T) {
	t.Parallel()
	p := startBinary(t, t.TempDir())
	const tryLine = "curl -i http://localhost:"
	p.waitFor(t, "the demo's URLs on stderr", func() bool { return strings.Contains(p.stderr.String(), tryLine) })
	p.stop(t)

	out := p.stderr.String()
	notice := strings.Index(out, "This is the built-in demo space: spacerouter was started without -config.\n")
	howTo := strings.Index(out, "To run your own space: spacerouter -config space.yaml (every key: docs/config.md; ")
	url := strings.Index(out, "  http://localhost:")
	require.NotEqual(t, -1, notice, "no demo notice on stderr:\n%s", out)
	require.NotEqual(t, -1, howTo, "no line on how to run one's own space:\n%s", out)
	require.NotEqual(t, -1, url, "no URL on stderr:\n%s", out)
	assert.Less(t, notice, url, "the notice comes after the URLs:\n%s", out)
	assert.Less(t, howTo, url, "the how-to comes after the URLs:\n%s", out)
	assert.Nil(t, findLogEntry(out, "warn", ""), "the demo starts with a warning:\n%s", out)
}

// TestCheckRotationWarnings: -check warns of a previous space CA retired
// within 14 days (SPEC.md 12.3), as start-up logs it, and says nothing of
// one retired later.
func TestCheckRotationWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"ca", "soon", "later"} {
		_, err := spaceca.Init(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"), "my-space")
		require.NoError(t, err)
	}
	soon := time.Now().Add(10*24*time.Hour + time.Hour).UTC().Truncate(time.Second)
	later := time.Now().Add(20 * 24 * time.Hour).UTC().Truncate(time.Second)
	writeFile(t, dir, "space.yaml", fmt.Sprintf(`space: my-space
listen: {http: 127.0.0.1:0}
space_ca:
  cert: ca.pem
  key: ca-key.pem
  state_dir: state
  previous:
    - {cert: soon.pem, retire_at: %s}
    - {cert: later.pem, retire_at: %s}
apps:
  - name: shop
    domains: [shop.example.com]
`, soon.Format(time.RFC3339), later.Format(time.RFC3339)))

	res := runBinary(t, dir, "-config", "space.yaml", "-check")
	assert.Equal(t, 0, res.code, "exit code of -check; stderr:\n%s", res.stderr)
	want := "warning: previous space CA soon.pem is retired at " + soon.Format(time.RFC3339) + " (in 11 days)"
	assert.Contains(t, res.stderr, want)
	assert.NotContains(t, res.stderr, "later.pem")
	_, err := os.Stat(filepath.Join(dir, "state"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "-check creates no state_dir")
}
