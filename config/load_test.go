package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minimal is the smallest valid config, for tests that change one thing.
const minimal = `listen: {http: "127.0.0.1:0"}
apps: [{name: shop, domains: [shop.example.com]}]
`

// loadExample copies testdata/name into a temporary directory next to the
// certificates and CAs it names, made for the test, and loads it from
// there.
func loadExample(t *testing.T, name string) (*Config, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	dir := t.TempDir()
	writeCert(t, dir, "certs/shop.pem", "certs/shop-key.pem", "shop.example.com", "*.shop.example.com")
	writeCA(t, dir, "ca/space-2026.pem", "ca/space-2026-key.pem", "space CA 2026")
	writeCA(t, dir, "ca/space-2025.pem", "", "space CA 2025")
	partners := writeCA(t, dir, "ca/partners.pem", "", "partners root")
	other := makeCert(t, caTemplate("partners root 2"), nil)
	writeFile(t, dir, "ca/partners.pem", append(partners.certPEM, other.certPEM...))
	now := time.Now()
	writeCertValid(t, dir, "certs/shop-2099.pem", "certs/shop-2099-key.pem", now.Add(-time.Hour),
		time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), "shop.example.com", "*.shop.example.com")
	writeCA(t, dir, "ca/acme-roots.pem", "", "ACME test root")
	writeCA(t, dir, "ca/dynos-2026.pem", "", "dynos 2026")
	writeCA(t, dir, "ca/dynos-2025.pem", "", "dynos 2025")
	path := writeFile(t, dir, name, data)
	c, err := Load(path)
	require.NoError(t, err, "loading %s", name)
	return c, dir
}

// fullExample is the Config of testdata/full.yaml (SPEC.md section 2)
// loaded from path, with its certificates in dir.
func fullExample(path, dir string) *Config {
	global := Defaults().Timeouts
	app := global
	app.Response = 120 * time.Second
	return &Config{
		File:  path,
		Space: "my-space",
		Listen: Listen{
			HTTP:  "127.0.0.1:8080",
			HTTPS: "127.0.0.1:8443",
			Admin: "127.0.0.1:9090",
		},
		Log: Log{
			Router: "stdout",
			Source: "heroku[router]",
			Level:  "info",
			Redact: []string{"token", "password"},
		},
		Timeouts:  global,
		Limits:    Defaults().Limits,
		Buffering: Defaults().Buffering,
		SpaceCA: &SpaceCA{
			Cert: filepath.Join(dir, "ca", "space-2026.pem"),
			Key:  filepath.Join(dir, "ca", "space-2026-key.pem"),
			Previous: []PreviousCA{{
				Cert:     filepath.Join(dir, "ca", "space-2025.pem"),
				RetireAt: time.Date(2099, 3, 1, 0, 0, 0, 0, time.UTC),
			}},
			StateDir: "/var/lib/spacerouter/ca",
		},
		ACME: &ACME{
			Directory:    "https://acme-v02.api.letsencrypt.org/directory",
			Email:        "ops@example.com",
			AgreeTOS:     true,
			TrustedRoots: filepath.Join(dir, "ca", "acme-roots.pem"),
			Storage:      "/var/lib/spacerouter/acme",
			RenewBefore:  720 * time.Hour,
		},
		Apps: []App{{
			Name:    "shop",
			Domains: []string{"shop.example.com", "*.shop.example.com"},
			TLS: []Cert{{
				Cert: filepath.Join(dir, "certs", "shop.pem"),
				Key:  filepath.Join(dir, "certs", "shop-key.pem"),
			}, {
				Cert:      filepath.Join(dir, "certs", "shop-2099.pem"),
				Key:       filepath.Join(dir, "certs", "shop-2099-key.pem"),
				ServeFrom: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
			}},
			Features:   []string{FeatureTLSModern},
			FeatureSet: map[string]bool{FeatureTLSModern: true},
			Timeouts:   app,
			ConfigVars: map[string]string{
				"ERROR_PAGE_URL":        "http://127.0.0.1:7000/error.html",
				"MAINTENANCE_PAGE_URL":  "http://127.0.0.1:7000/maintenance.html",
				"HEROKU_EXTRA_RESOLVER": "127.0.0.1:5353",
			},
			Dynos: []Dyno{
				{Name: "web.1", Address: "127.0.0.1:5001", State: StateUp},
				{Name: "web.2", Address: "dyno2.internal:5000", State: StateCrashed},
			},
			MTLS: MTLS{
				Mode:    MTLSRequire,
				Trust:   []string{TrustSpace, filepath.Join(dir, "ca", "partners.pem")},
				Forward: ForwardXFCC,
			},
			IPRules: []IPRule{
				{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Description: "Office"},
				{Prefix: netip.MustParsePrefix("2001:db8:1::/48")},
			},
			DynoTLS: DynoTLS{
				Mode:       DynoTLSVerifyFull,
				Trust:      []string{filepath.Join(dir, "ca", "dynos-2026.pem"), filepath.Join(dir, "ca", "dynos-2025.pem")},
				ServerName: "shop.dynos.internal",
			},
		}, {
			Name:       "api",
			Domains:    []string{"api.example.com"},
			TLS:        []Cert{},
			TLSAuto:    true,
			Features:   []string{},
			FeatureSet: map[string]bool{},
			Timeouts:   global,
			ConfigVars: map[string]string{},
			Dynos:      []Dyno{{Name: "web.1", Address: "api-web-1.internal:5443", State: StateUp}},
			MTLS:       MTLS{Mode: MTLSOptional, Trust: []string{TrustSpace}, Forward: ForwardNone},
			IPRules:    []IPRule{},
			DynoTLS:    DynoTLS{Mode: DynoTLSRequire, Trust: []string{}},
		}},
	}
}

func TestLoadFullExample(t *testing.T) {
	t.Parallel()
	// JSON is YAML too: full.json is full.yaml written as JSON.
	for _, name := range []string{"full.yaml", "full.json"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, dir := loadExample(t, name)
			assert.Equal(t, fullExample(filepath.Join(dir, name), dir), c)
			assert.Empty(t, c.Warnings())
			assert.True(t, c.App("shop").Has(FeatureTLSModern))
			assert.False(t, c.App("shop").Has(FeatureTLSSalesforce))
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte(minimal))
	require.NoError(t, err)
	// The values of SPEC.md section 2, written out rather than taken from
	// Defaults, so a changed default fails here.
	cases := []struct {
		name      string
		got, want any
	}{
		{"log.router", c.Log.Router, "stdout"},
		{"log.source", c.Log.Source, "heroku[router]"},
		{"log.level", c.Log.Level, "info"},
		{"log.redact", len(c.Log.Redact), 0},
		{"timeouts.connect", c.Timeouts.Connect, 5 * time.Second},
		{"timeouts.response", c.Timeouts.Response, 30 * time.Second},
		{"timeouts.idle", c.Timeouts.Idle, 55 * time.Second},
		{"timeouts.client", c.Timeouts.Client, 55 * time.Second},
		{"timeouts.keepalive", c.Timeouts.Keepalive, 60 * time.Second},
		{"timeouts.dyno_keepalive", c.Timeouts.DynoKeepalive, 90 * time.Second},
		{"timeouts.shutdown", c.Timeouts.Shutdown, 30 * time.Second},
		{"limits.request_line_bytes", c.Limits.RequestLineBytes, 8192},
		{"limits.method_bytes", c.Limits.MethodBytes, 127},
		{"limits.header_name_bytes", c.Limits.HeaderNameBytes, 1000},
		{"limits.header_bytes", c.Limits.HeaderBytes, 524288},
		{"limits.cookie_bytes", c.Limits.CookieBytes, 524288},
		{"limits.headers_total_bytes", c.Limits.HeadersTotalBytes, 1048576},
		{"limits.header_count", c.Limits.HeaderCount, 1000},
		{"limits.concurrency_per_dyno", c.Limits.ConcurrencyPerDyno, 200},
		{"limits.connections", c.Limits.Connections, 10000},
		{"limits.connections_per_client", c.Limits.ConnectionsPerClient, 1000},
		{"limits.requests_per_client", c.Limits.RequestsPerClient, 100},
		{"limits.min_transfer_rate", c.Limits.MinTransferRate, 256},
		{"limits.h2_max_streams", c.Limits.H2MaxStreams, 250},
		{"buffering.window", c.Buffering.Window, 10 * time.Millisecond},
		{"buffering.bytes", c.Buffering.Bytes, 16384},
		{"buffering.request_bytes", c.Buffering.RequestBytes, 65536},
		{"space", c.Space, ""},
		{"listen.https", c.Listen.HTTPS, ""},
		{"listen.admin", c.Listen.Admin, ""},
		{"apps[0].features", c.Apps[0].Features, []string{FeatureTLSSalesforce}},
		{"apps[0].feature set", c.Apps[0].FeatureSet, map[string]bool{FeatureTLSSalesforce: true}},
		{"apps[0].maintenance", c.Apps[0].Maintenance, false},
		{"apps[0].timeouts", c.Apps[0].Timeouts, c.Timeouts},
		{"apps[0].tls", c.Apps[0].TLS, []Cert{}},
		{"apps[0].config_vars", c.Apps[0].ConfigVars, map[string]string{}},
		{"apps[0].dynos", c.Apps[0].Dynos, []Dyno{}},
		{"space_ca", c.SpaceCA, (*SpaceCA)(nil)},
		{"apps[0].mtls", c.Apps[0].MTLS, MTLS{Mode: MTLSOff, Trust: []string{}, Forward: ForwardXFCC}},
		{"apps[0].ip_rules", c.Apps[0].IPRules, []IPRule{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.got)
		})
	}
}

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	// Each case sets keys of limits or buffering; the others keep their
	// defaults. An explicit 0 is kept where 0 means off: only an omitted
	// key takes the default.
	cases := []struct {
		name      string
		src       string
		limits    func(*Limits)
		buffering func(*Buffering)
	}{
		{"omitted", "limits: {}\nbuffering: {}\n", nil, nil},
		{"connections", "limits: {connections: 50000, connections_per_client: 5000}\n",
			func(l *Limits) { l.Connections, l.ConnectionsPerClient = 50000, 5000 }, nil},
		{"requests per client", "limits: {requests_per_client: 1}\n",
			func(l *Limits) { l.RequestsPerClient = 1 }, nil},
		{"min transfer rate", "limits: {min_transfer_rate: 1024}\n",
			func(l *Limits) { l.MinTransferRate = 1024 }, nil},
		{"min transfer rate off", "limits: {min_transfer_rate: 0}\n",
			func(l *Limits) { l.MinTransferRate = 0 }, nil},
		{"h2 max streams one", "limits: {h2_max_streams: 1}\n",
			func(l *Limits) { l.H2MaxStreams = 1 }, nil},
		{"h2 max streams most", "limits: {h2_max_streams: 2147483647}\n",
			func(l *Limits) { l.H2MaxStreams = 1<<31 - 1 }, nil},
		{"request bytes", "buffering: {request_bytes: 1048576}\n",
			nil, func(b *Buffering) { b.RequestBytes = 1 << 20 }},
		{"request bytes off", "buffering: {request_bytes: 0}\n",
			nil, func(b *Buffering) { b.RequestBytes = 0 }},
		{"JSON", `{"limits": {"min_transfer_rate": 0, "h2_max_streams": 100}, "buffering": {"request_bytes": 0}}` + "\n",
			func(l *Limits) { l.MinTransferRate, l.H2MaxStreams = 0, 100 },
			func(b *Buffering) { b.RequestBytes = 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := tc.src
			if !strings.HasPrefix(src, "{") {
				src += minimal
			} else {
				src = `{"listen": {"http": ":0"}, "apps": [{"name": "shop", "domains": ["shop.example.com"]}], ` + src[1:]
			}
			c, err := Parse("t.yaml", []byte(src))
			require.NoError(t, err, "config:\n%s", src)
			wantL, wantB := Defaults().Limits, Defaults().Buffering
			if tc.limits != nil {
				tc.limits(&wantL)
			}
			if tc.buffering != nil {
				tc.buffering(&wantB)
			}
			assert.Equal(t, wantL, c.Limits, "config:\n%s", src)
			assert.Equal(t, wantB, c.Buffering, "config:\n%s", src)
			assert.Empty(t, c.Warnings())
		})
	}
}

func TestConnectionsPerClientWarning(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"both set", "limits:\n  connections: 100\n  connections_per_client: 200\n", []string{
			`t.yaml:3: limits.connections_per_client: 200 is more than limits.connections (100): ` +
				`one client can hold every connection; want at most 100`}},
		{"default per client", "limits:\n  connections: 500\n", []string{
			`t.yaml:2: limits.connections_per_client: the default 1000 is more than limits.connections (500): ` +
				`one client can hold every connection; want at most 500`}},
		{"default connections", "limits: {connections_per_client: 20000}\n", []string{
			`t.yaml:1: limits.connections_per_client: 20000 is more than limits.connections (10000): ` +
				`one client can hold every connection; want at most 10000`}},
		{"equal", "limits: {connections: 100, connections_per_client: 100}\n", []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("t.yaml", []byte(tc.src+minimal))
			require.NoError(t, err, "config:\n%s", tc.src)
			assert.Equal(t, tc.want, c.Warnings(), "config:\n%s", tc.src)
		})
	}
}

func TestDynoStateDefault(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte(`listen: {http: ":0"}
apps:
  - name: shop
    domains: [shop.example.com]
    dynos:
      - {name: web.1, address: "127.0.0.1:5001"}
      - {name: web.2, address: "[::1]:5002", state: starting}
      - {name: web.3, address: "dyno3:5003", state: up}
`))
	require.NoError(t, err)
	assert.Equal(t, []Dyno{
		{Name: "web.1", Address: "127.0.0.1:5001", State: StateUp},
		{Name: "web.2", Address: "[::1]:5002", State: StateStarting},
		{Name: "web.3", Address: "dyno3:5003", State: StateUp},
	}, c.Apps[0].Dynos)
}

func TestFeatures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		features string // the features line of the app; "" omits it
		want     []string
	}{
		{"omitted", "", []string{FeatureTLSSalesforce}},
		{"null", "features:", []string{FeatureTLSSalesforce}},
		{"empty", "features: []", []string{}},
		{"one", "features: [spaces-tls-modern]", []string{FeatureTLSModern}},
		{"all", "features: [spaces-tls-salesforce, spaces-tls-modern, spaces-strict-tls, http-disable-http2, " +
			"http-disable-keepalive-to-dyno, http-end-to-end-continue, spaces-extra-resolver]",
			knownFeatures},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := `listen: {http: ":0"}
apps:
  - name: shop
    domains: [shop.example.com]
    config_vars: {HEROKU_EXTRA_RESOLVER: 10.0.0.2}
    ` + tc.features + "\n"
			c, err := Parse("t.yaml", []byte(src))
			require.NoError(t, err, "config:\n%s", src)
			a := c.Apps[0]
			assert.Equal(t, tc.want, a.Features)
			assert.Len(t, a.FeatureSet, len(tc.want))
			for _, f := range tc.want {
				assert.True(t, a.Has(f), "Has(%q)", f)
			}
		})
	}
}

func TestAppTimeoutsOverride(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte(`apps:
  - name: shop
    domains: [shop.example.com]
    timeouts: {response: 2m, idle: 1s}
  - name: blog
    domains: [blog.example.com]
timeouts: {response: 10s, connect: 1s}
listen: {http: ":0"}
`))
	require.NoError(t, err)
	// The global timeouts are merged whatever their place in the file.
	assert.Equal(t, 10*time.Second, c.Timeouts.Response)
	shop, blog := c.App("shop").Timeouts, c.App("blog").Timeouts
	assert.Equal(t, 2*time.Minute, shop.Response)
	assert.Equal(t, time.Second, shop.Idle)
	assert.Equal(t, time.Second, shop.Connect, "global override")
	assert.Equal(t, 55*time.Second, shop.Client, "default")
	assert.Equal(t, c.Timeouts, blog)
}

func TestConfigVarsAsWritten(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte(`listen: {http: ":0"}
apps:
  - name: shop
    domains: [shop.example.com]
    config_vars:
      PORT: 5000
      RATIO: 1.50
      DEBUG: true
      EMPTY:
      QUOTED: "x y"
      ERROR_PAGE_URL: ""
`))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"PORT": "5000", "RATIO": "1.50", "DEBUG": "true", "EMPTY": "", "QUOTED": "x y", "ERROR_PAGE_URL": "",
	}, c.Apps[0].ConfigVars)
}

func TestMergeKeys(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte(`listen: {http: ":0"}
apps:
  - &base
    name: shop
    domains: [shop.example.com]
    features: [http-disable-http2]
    dynos: &dynos
      - {name: web.1, address: "127.0.0.1:5001"}
  - <<: *base
    name: blog
    domains: [blog.example.com]
    dynos: *dynos
`))
	require.NoError(t, err)
	require.Len(t, c.Apps, 2)
	blog := c.App("blog")
	require.NotNil(t, blog)
	assert.Equal(t, []string{"blog.example.com"}, blog.Domains)
	assert.Equal(t, []string{FeatureDisableHTTP2}, blog.Features)
	assert.Equal(t, c.Apps[0].Dynos, blog.Dynos)
}

func TestApp(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte(`listen: {http: ":0"}
apps:
  - {name: shop, domains: [shop.example.com]}
  - {name: blog, domains: [blog.example.com]}
`))
	require.NoError(t, err)
	require.NotNil(t, c.App("blog"))
	assert.Equal(t, []string{"blog.example.com"}, c.App("blog").Domains)
	assert.Same(t, &c.Apps[0], c.App("shop"))
	assert.Nil(t, c.App("nope"))
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, isProblems := errors.AsType[*Errors](err)
	assert.False(t, isProblems)
}

func TestLoadNamesFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "space.yaml", []byte("listen: {htp: \":0\"}\n"))
	_, err := Load(path)
	assert.Equal(t, []string{
		path + `:1: listen: unknown key "htp": allowed keys are http, https, admin`,
		path + `:1: listen: no listener: set http, https or both, such as http: 127.0.0.1:8080`,
		path + `:1: apps: no app: want a list with at least one app, each with name and domains`,
	}, problems(t, err))
}

func TestRelativeCertPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCert(t, dir, "conf/certs/a.pem", "conf/certs/a-key.pem", "shop.example.com")
	abs := filepath.Join(dir, "abs")
	writeCert(t, abs, "b.pem", "b-key.pem", "shop.example.com")
	src := `listen: {https: ":0"}
apps:
  - name: shop
    domains: [shop.example.com]
    tls:
      - {cert: certs/a.pem, key: ./certs/a-key.pem}
      - {cert: ` + filepath.Join(abs, "b.pem") + `, key: ` + filepath.Join(abs, "b-key.pem") + `}
`
	c, err := Parse(filepath.Join(dir, "conf", "space.yaml"), []byte(src))
	require.NoError(t, err)
	assert.Equal(t, []Cert{
		{Cert: filepath.Join(dir, "conf", "certs", "a.pem"), Key: filepath.Join(dir, "conf", "certs", "a-key.pem")},
		{Cert: filepath.Join(abs, "b.pem"), Key: filepath.Join(abs, "b-key.pem")},
	}, c.Apps[0].TLS)
}

func TestRelativeCertPathsFromWorkingDir(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "conf/certs/a.pem", "conf/certs/a-key.pem", "shop.example.com")
	t.Chdir(dir)
	c, err := Parse(filepath.Join("conf", "space.yaml"), []byte(`listen: {https: ":0"}
log: {router: logs/router.log}
apps:
  - name: shop
    domains: [shop.example.com]
    tls: [{cert: certs/a.pem, key: certs/a-key.pem}]
`))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join("conf", "certs", "a.pem"), c.Apps[0].TLS[0].Cert)
	assert.Equal(t, filepath.Join("conf", "logs", "router.log"), c.Log.Router)
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCert(t, dir, "other.pem", "other-key.pem", "other.example.com")
	writeCert(t, dir, "wild.pem", "wild-key.pem", "*.shop.example.com")
	past := time.Now().Add(-48 * time.Hour)
	writeCertValid(t, dir, "old.pem", "old-key.pem", past, past.Add(time.Hour), "shop.example.com")
	path := filepath.Join(dir, "space.yaml")
	c, err := Parse(path, []byte(`listen: {https: ":0"}
apps:
  - name: shop
    domains: [shop.example.com, "*.shop.example.com"]
    features: [spaces-strict-tls]
    tls:
      - {cert: other.pem, key: other-key.pem}
      - {cert: wild.pem, key: wild-key.pem}
      - {cert: old.pem, key: old-key.pem}
  - name: blog
    domains: [blog.example.com]
`))
	require.NoError(t, err)
	assert.Equal(t, []string{
		path + ":5: apps[0].features: spaces-strict-tls is deprecated; use spaces-tls-modern",
		path + ":7: apps[0].tls[0].cert: certificate for other.example.com covers none of the app's domains" +
			" (shop.example.com, *.shop.example.com)",
		path + ":9: apps[0].tls[2].cert: certificate expired on " + past.Add(time.Hour).UTC().Format(time.DateOnly),
		path + ":10: apps[1].tls: no certificate: the https listener refuses this app's domains",
	}, c.Warnings())
}

func TestErrorsError(t *testing.T) {
	t.Parallel()
	err := error(&Errors{Problems: []Problem{
		{File: "a.yaml", Line: 3, Key: "listen.http", Msg: "bad"},
		{File: "a.yaml", Msg: "empty file"},
	}})
	assert.Equal(t, "a.yaml:3: listen.http: bad\na.yaml: empty file", err.Error())
}
