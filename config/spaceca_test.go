package config

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// spaceCAConfig is a valid config with the space_ca section sc (indented
// two spaces under space_ca:).
func spaceCAConfig(sc string) string {
	return "listen: {http: \":0\"}\nspace_ca:\n" + sc + "apps: [{name: shop, domains: [shop.example.com]}]\n"
}

func TestSpaceCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCA(t, dir, "ca/space.pem", "ca/space-key.pem", "space CA 2026")
	writeCA(t, dir, "ca/space-2025.pem", "", "space CA 2025")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	writeFile(t, dir, "ca/space-2024.pem", makeCert(t, caTemplate("space CA 2024"), rsaKey).certPEM)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "issued"), 0o700))
	path := filepath.Join(dir, "conf", "space.yaml")
	c, err := Parse(path, []byte(spaceCAConfig(`  cert: ../ca/space.pem
  key: `+filepath.Join(dir, "ca", "space-key.pem")+`
  previous:
    - {cert: ../ca/space-2025.pem, retire_at: 2099-03-01T00:00:00Z}
    - cert: ../ca/space-2024.pem
      retire_at: "2098-01-01T12:00:00+02:00"
  state_dir: ../issued
`)))
	require.NoError(t, err)
	assert.Equal(t, &SpaceCA{
		Cert: filepath.Join(dir, "ca", "space.pem"),
		Key:  filepath.Join(dir, "ca", "space-key.pem"),
		Previous: []PreviousCA{
			{Cert: filepath.Join(dir, "ca", "space-2025.pem"), RetireAt: time.Date(2099, 3, 1, 0, 0, 0, 0, time.UTC)},
			{Cert: filepath.Join(dir, "ca", "space-2024.pem"), RetireAt: time.Date(2098, 1, 1, 12, 0, 0, 0, time.FixedZone("", 2*3600))},
		},
		StateDir: filepath.Join(dir, "issued"),
	}, c.SpaceCA)
	assert.Empty(t, c.Warnings())
}

func TestSpaceCARSA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ca := makeCert(t, caTemplate("space CA"), key)
	writeFile(t, dir, "ca.pem", ca.certPEM)
	writeFile(t, dir, "ca-key.pem", ca.keyPEM)
	c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(spaceCAConfig("  {cert: ca.pem, key: ca-key.pem, state_dir: state}\n")))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "state"), c.SpaceCA.StateDir, "a state_dir that does not exist yet")
	assert.Equal(t, []PreviousCA{}, c.SpaceCA.Previous)
}

// TestSpaceCAProblems: each case writes files into a temporary directory
// and has the problems of one space_ca section. Messages name the files;
// DIR stands for the directory.
func TestSpaceCAProblems(t *testing.T) {
	t.Parallel()
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	cases := []struct {
		name  string
		files func(t *testing.T, dir string)
		sc    string   // the space_ca section, from line 3
		want  []string // problems, DIR for the directory
	}{
		{"key of another CA", func(t *testing.T, dir string) {
			writeCA(t, dir, "ca.pem", "", "space CA")
			writeCA(t, dir, "other.pem", "ca-key.pem", "other CA")
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n", []string{
			`DIR/space.yaml:4: space_ca.key: the key in "DIR/ca-key.pem" does not match the certificate in "DIR/ca.pem": want the CA certificate's own private key`}},
		{"not a CA", func(t *testing.T, dir string) {
			writeCert(t, dir, "ca.pem", "ca-key.pem", "shop.example.com")
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n", []string{
			`DIR/space.yaml:3: space_ca.cert: the certificate in "DIR/ca.pem" (CN "shop.example.com") is not a CA: want one with basic constraints CA:true`}},
		{"P-384", func(t *testing.T, dir string) {
			ca := makeCert(t, caTemplate("space CA"), newKey(t, elliptic.P384()))
			writeFile(t, dir, "ca.pem", ca.certPEM)
			writeFile(t, dir, "ca-key.pem", ca.keyPEM)
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n", []string{
			`DIR/space.yaml:3: space_ca.cert: the certificate in "DIR/ca.pem" has an ECDSA P-384 key: want ECDSA P-256 or RSA of at least 2048 bits`}},
		{"RSA 1024", func(t *testing.T, dir string) {
			ca := makeCert(t, caTemplate("space CA"), rsa1024)
			writeFile(t, dir, "ca.pem", ca.certPEM)
			writeFile(t, dir, "ca-key.pem", ca.keyPEM)
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n", []string{
			`DIR/space.yaml:3: space_ca.cert: the certificate in "DIR/ca.pem" has a 1024-bit RSA key: want ECDSA P-256 or RSA of at least 2048 bits`}},
		{"two certificates", func(t *testing.T, dir string) {
			a := writeCA(t, dir, "ca.pem", "ca-key.pem", "space CA")
			b := makeCert(t, caTemplate("root"), nil)
			writeFile(t, dir, "ca.pem", append(a.certPEM, b.certPEM...))
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n", []string{
			`DIR/space.yaml:3: space_ca.cert: "DIR/ca.pem" holds 2 certificates: want one, the space CA's`}},
		{"no PEM", func(t *testing.T, dir string) {
			writeFile(t, dir, "ca.pem", []byte("not a certificate\n"))
			writeFile(t, dir, "ca-key.pem", []byte("not a key\n"))
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n", []string{
			`DIR/space.yaml:3: space_ca.cert: no certificate in "DIR/ca.pem": want a PEM file with a CERTIFICATE block`,
			`DIR/space.yaml:4: space_ca.key: no private key in "DIR/ca-key.pem": want a PEM file with a PRIVATE KEY block (PKCS#8, PKCS#1 or SEC 1)`}},
		{"bad DER", func(t *testing.T, dir string) {
			writeFile(t, dir, "ca.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
			writeFile(t, dir, "ca-key.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n", []string{
			// The text after the file name comes from crypto/x509; this is
			// the one place that compares it.
			`DIR/space.yaml:3: space_ca.cert: parsing certificate 1 of "DIR/ca.pem": x509: malformed certificate`,
			`DIR/space.yaml:4: space_ca.key: cannot parse the private key in "DIR/ca-key.pem": want an unencrypted PKCS#8, PKCS#1 (RSA) or SEC 1 (ECDSA) key`}},
		{"key missing", func(t *testing.T, dir string) {
			writeCA(t, dir, "ca.pem", "", "space CA")
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n", []string{
			`DIR/space.yaml:4: space_ca.key: stat DIR/ca-key.pem: no such file or directory`}},
		{"directories", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "ca.pem"), 0o755))
			writeCA(t, dir, "other.pem", "ca-key.pem", "space CA")
			writeFile(t, dir, "state", []byte("a file\n"))
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n", []string{
			`DIR/space.yaml:3: space_ca.cert: "DIR/ca.pem" is not a regular file`,
			`DIR/space.yaml:5: space_ca.state_dir: "DIR/state" is not a directory: want the directory of issued client certificates (the router creates it, mode 0700, when it is missing)`}},
		{"previous", func(t *testing.T, dir string) {
			writeCA(t, dir, "ca.pem", "ca-key.pem", "space CA")
			writeCA(t, dir, "old.pem", "", "old CA")
			writeCert(t, dir, "leaf.pem", "leaf-key.pem", "shop.example.com")
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n  previous:\n" +
			"    - {cert: ca.pem, retire_at: 2099-01-01T00:00:00Z}\n" +
			"    - {cert: old.pem, retire_at: 2099-01-01T00:00:00Z}\n" +
			"    - {cert: ./old.pem, retire_at: 2099-01-01T00:00:00Z}\n" +
			"    - {cert: leaf.pem, retire_at: 2099-01-01T00:00:00Z}\n" +
			"    - {cert: none.pem, retire_at: 2099-01-01T00:00:00Z}\n", []string{
			`DIR/space.yaml:7: space_ca.previous[0].cert: the certificate in "DIR/ca.pem" is also space_ca.cert: list each CA once`,
			`DIR/space.yaml:9: space_ca.previous[2].cert: the certificate in "DIR/old.pem" is also space_ca.previous[1].cert: list each CA once`,
			`DIR/space.yaml:10: space_ca.previous[3].cert: the certificate in "DIR/leaf.pem" (CN "shop.example.com") is not a CA: want one with basic constraints CA:true`,
			`DIR/space.yaml:11: space_ca.previous[4].cert: stat DIR/none.pem: no such file or directory`}},
		{"previous two certificates", func(t *testing.T, dir string) {
			writeCA(t, dir, "ca.pem", "ca-key.pem", "space CA")
			a, b := makeCert(t, caTemplate("a"), nil), makeCert(t, caTemplate("b"), nil)
			writeFile(t, dir, "old.pem", append(a.certPEM, b.certPEM...))
		}, "  cert: ca.pem\n  key: ca-key.pem\n  state_dir: state\n  previous: [{cert: old.pem, retire_at: 2099-01-01T00:00:00Z}]\n", []string{
			`DIR/space.yaml:6: space_ca.previous[0].cert: "DIR/old.pem" holds 2 certificates: want one, the previous CA's`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tc.files(t, dir)
			src := spaceCAConfig(tc.sc)
			_, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "DIR", dir)
			}
			assert.Equal(t, want, problems(t, err), "config:\n%s", src)
		})
	}
}

// TestSpaceCAMissingNamesInit: a CA that does not exist yet is a problem
// that says how to make one, naming the config file as given.
func TestSpaceCAMissingNamesInit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "space.yaml", []byte(spaceCAConfig("  {cert: ca.pem, key: ca-key.pem, state_dir: state}\n")))
	_, err := Load(path)
	assert.Equal(t, []string{
		path + `:3: space_ca.cert: stat ` + filepath.Join(dir, "ca.pem") + `: no such file or directory: make the CA with spacerouter ca init -config ` + path,
		path + `:3: space_ca.key: stat ` + filepath.Join(dir, "ca-key.pem") + `: no such file or directory`,
	}, problems(t, err))
}

func TestSpaceCAUnreadable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	dir := t.TempDir()
	writeCA(t, dir, "ca.pem", "ca-key.pem", "space CA")
	require.NoError(t, os.Chmod(filepath.Join(dir, "ca-key.pem"), 0))
	_, err := Parse(filepath.Join(dir, "space.yaml"), []byte(spaceCAConfig("  {cert: ca.pem, key: ca-key.pem, state_dir: state}\n")))
	assert.Equal(t, []string{
		filepath.Join(dir, "space.yaml") + `:3: space_ca.key: open ` + filepath.Join(dir, "ca-key.pem") + `: permission denied`,
	}, problems(t, err))
}

// TestSkipSpaceCAFiles: spacerouter ca init loads a config whose CA files
// do not exist yet; the keys are still required and the paths resolved,
// and everything else is checked as by Load.
func TestSkipSpaceCAFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := spaceCAConfig(`  cert: ca/space.pem
  key: ca/space-key.pem
  previous: [{cert: ca/old.pem, retire_at: 2099-01-01T00:00:00Z}]
  state_dir: state
`)
	path := writeFile(t, dir, "space.yaml", []byte(src))

	_, err := Load(path)
	require.Len(t, problems(t, err), 3, "Load reads the CA files")

	for name, load := range map[string]func() (*Config, error){
		"LoadWith":  func() (*Config, error) { return LoadWith(path, LoadOptions{SkipSpaceCAFiles: true}) },
		"ParseWith": func() (*Config, error) { return ParseWith(path, []byte(src), LoadOptions{SkipSpaceCAFiles: true}) },
	} {
		t.Run(name, func(t *testing.T) {
			c, err := load()
			require.NoError(t, err)
			assert.Equal(t, &SpaceCA{
				Cert:     filepath.Join(dir, "ca", "space.pem"),
				Key:      filepath.Join(dir, "ca", "space-key.pem"),
				Previous: []PreviousCA{{Cert: filepath.Join(dir, "ca", "old.pem"), RetireAt: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}},
				StateDir: filepath.Join(dir, "state"),
			}, c.SpaceCA)
		})
	}

	t.Run("still checked", func(t *testing.T) {
		writeFile(t, dir, "file", []byte("x\n"))
		_, err := ParseWith(path, []byte(`listen: {http: ":0"}
space_ca:
  cert: ca/space.pem
  state_dir: file
  previous: [{cert: ca/old.pem, retire_at: 2099-01-01}]
apps: [{name: shop, domains: [shop.example.com], mtls: {trust: [ca/clients.pem]}}]
`), LoadOptions{SkipSpaceCAFiles: true})
		assert.Equal(t, []string{
			path + `:3: space_ca.key: missing: the space CA needs key, the PEM file of its private key (spacerouter ca init makes it)`,
			path + `:4: space_ca.state_dir: "` + filepath.Join(dir, "file") + `" is not a directory: want the directory of issued client certificates (the router creates it, mode 0700, when it is missing)`,
			path + `:5: space_ca.previous[0].retire_at: bad time "2099-01-01": want an RFC 3339 time such as 2027-03-01T00:00:00Z`,
			path + `:6: apps[0].mtls.trust: stat ` + filepath.Join(dir, "ca", "clients.pem") + `: no such file or directory`,
		}, problems(t, err))
	})
}

// TestSpaceCAWarnings: a previous CA whose retire_at is past is retired at
// load (SPEC.md section 12.3), and a CA certificate outside its validity
// period still loads; both are warnings.
func TestSpaceCAWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tmpl := caTemplate("space CA")
	tmpl.NotBefore, tmpl.NotAfter = time.Now().AddDate(-2, 0, 0), time.Now().AddDate(0, 0, -3)
	expired := makeCert(t, tmpl, nil)
	writeFile(t, dir, "ca.pem", expired.certPEM)
	writeFile(t, dir, "ca-key.pem", expired.keyPEM)
	tmpl = caTemplate("future CA")
	tmpl.NotBefore = time.Date(2098, 1, 2, 3, 4, 5, 0, time.UTC)
	writeFile(t, dir, "future.pem", makeCert(t, tmpl, nil).certPEM)
	writeCA(t, dir, "old.pem", "", "old CA")
	path := filepath.Join(dir, "space.yaml")
	src := spaceCAConfig(`  cert: ca.pem
  key: ca-key.pem
  state_dir: state
  previous:
    - {cert: old.pem, retire_at: 2020-03-01T00:00:00Z}
    - cert: future.pem
      retire_at: "2099-03-01T00:00:00+01:00"
`)
	c, err := Parse(path, []byte(src))
	require.NoError(t, err)
	assert.Equal(t, []string{
		path + `:3: space_ca.cert: the CA certificate in "` + filepath.Join(dir, "ca.pem") + `" expired on ` +
			expired.cert.NotAfter.UTC().Format(time.DateOnly) + `: client certificates it issued are refused`,
		path + `:7: space_ca.previous[0].retire_at: 2020-03-01T00:00:00Z is past: the CA in "` + filepath.Join(dir, "old.pem") +
			`" is retired and client certificates it issued are refused; remove the entry`,
		path + `:8: space_ca.previous[1].cert: the CA certificate in "` + filepath.Join(dir, "future.pem") +
			`" is not valid before 2098-01-02 03:04:05: client certificates it issued are refused until then`,
	}, c.Warnings())
	require.Len(t, c.SpaceCA.Previous, 2, "a retired CA is still in the config, for the router to know it is retired")

	c, err = ParseWith(path, []byte(src), LoadOptions{SkipSpaceCAFiles: true})
	require.NoError(t, err)
	assert.Len(t, c.Warnings(), 1, "retire_at is checked without the files: %q", c.Warnings())
}
