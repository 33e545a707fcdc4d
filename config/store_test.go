package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storeFile is a file with store and nothing served from it.
const storeFile = "space: my-space\nlisten: {http: \"127.0.0.1:8080\"}\n" +
	"store:\n  etcd: {endpoints: [\"http://127.0.0.1:2379\"], prefix: /spacerouter/my-space/}\n"

func TestStoreSection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCA(t, dir, "etcd-ca.pem", "", "etcd CA")
	writeCert(t, dir, "etcd-client.pem", "etcd-client-key.pem", "spacerouter")
	writeFile(t, dir, "etcd-password", []byte("s3cret\nignored\n"))
	c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(`space: my-space
listen: {https: "127.0.0.1:8443"}
store:
  etcd:
    endpoints: [https://etcd-1.internal:2379, https://10.0.0.2:2379]
    prefix: /spacerouter/my-space/
    dial_timeout: 2s
    tls: {ca: etcd-ca.pem, cert: etcd-client.pem, key: etcd-client-key.pem}
    username: spacerouter
    password_file: etcd-password
  cache_file: last-good.json
  router_id: edge-1
`))
	require.NoError(t, err)
	require.NotNil(t, c.Store)
	assert.Equal(t, &Store{
		Etcd: Etcd{
			Endpoints:    []string{"https://etcd-1.internal:2379", "https://10.0.0.2:2379"},
			Prefix:       "/spacerouter/my-space/",
			DialTimeout:  2 * time.Second,
			TLS:          &EtcdTLS{CA: filepath.Join(dir, "etcd-ca.pem"), Cert: filepath.Join(dir, "etcd-client.pem"), Key: filepath.Join(dir, "etcd-client-key.pem")},
			Username:     "spacerouter",
			PasswordFile: filepath.Join(dir, "etcd-password"),
		},
		CacheFile: filepath.Join(dir, "last-good.json"),
		RouterID:  "edge-1",
	}, c.Store)
	assert.Empty(t, c.Apps)
	pw, err := ReadPassword(c.Store.Etcd.PasswordFile)
	require.NoError(t, err)
	assert.Equal(t, "s3cret", pw)
}

func TestStoreDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse("space.yaml", []byte(storeFile))
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, c.Store.Etcd.DialTimeout)
	assert.Nil(t, c.Store.Etcd.TLS)
	assert.Equal(t, "", c.Store.CacheFile)
	assert.True(t, strings.HasSuffix(c.Store.RouterID, "-8080"), "router id %q: want <host>-8080", c.Store.RouterID)
	assert.Equal(t, "web-1-8443", DefaultRouterID("web-1", Listen{HTTPS: "127.0.0.1:8443"}))
	assert.Equal(t, "router-80", DefaultRouterID("a b", Listen{HTTP: ":80"}))
}

func TestStoreProblems(t *testing.T) {
	t.Parallel()
	const listen = "listen: {http: \"127.0.0.1:8080\"}\n"
	cases := []struct{ name, src, want string }{
		{"apps beside store", storeFile + "apps: [{name: shop, domains: [shop.example.com]}]\n",
			`space.yaml:5: apps: not in a file with store (SPEC.md section 14): each app is the etcd key apps/<app> and each dyno dynos/<app>/<dyno>; the file holds only space, listen, log, admin, store`},
		{"timeouts beside store", storeFile + "timeouts: {connect: 1s}\n",
			`space.yaml:5: timeouts: not in a file with store (SPEC.md section 14): write timeouts in the etcd key space; the file holds only space, listen, log, admin, store`},
		{"no etcd", listen + "store: {cache_file: x.json}\n",
			`space.yaml:2: store.etcd: missing: store needs etcd, such as etcd: {endpoints: [http://127.0.0.1:2379], prefix: /spacerouter/my-space/}`},
		{"no endpoints", listen + "store: {etcd: {prefix: /s/}}\n",
			`space.yaml:2: store.etcd.endpoints: missing: etcd needs endpoints, the URLs of its members, such as [http://127.0.0.1:2379]`},
		{"empty endpoints", listen + "store: {etcd: {endpoints: [], prefix: /s/}}\n",
			`space.yaml:2: store.etcd.endpoints: empty: want at least one URL, such as [http://127.0.0.1:2379]`},
		{"endpoint without scheme", listen + "store: {etcd: {endpoints: [\"127.0.0.1:2379\"], prefix: /s/}}\n",
			`space.yaml:2: store.etcd.endpoints: bad endpoint "127.0.0.1:2379": want an http:// or https:// URL with host and port, such as http://127.0.0.1:2379`},
		{"endpoint without port", listen + "store: {etcd: {endpoints: [\"http://etcd\"], prefix: /s/}}\n",
			`space.yaml:2: store.etcd.endpoints: bad endpoint "http://etcd": want a port, such as http://etcd:2379`},
		{"no prefix", listen + "store: {etcd: {endpoints: [\"http://127.0.0.1:2379\"]}}\n",
			`space.yaml:2: store.etcd.prefix: missing: etcd needs prefix, the key prefix of the space, such as /spacerouter/my-space/`},
		{"prefix without slash", listen + "store: {etcd: {endpoints: [\"http://127.0.0.1:2379\"], prefix: /s}}\n",
			`space.yaml:2: store.etcd.prefix: bad prefix "/s": want it to end in /, write "/s/"`},
		{"dial timeout", listen + "store: {etcd: {endpoints: [\"http://127.0.0.1:2379\"], prefix: /s/, dial_timeout: 5}}\n",
			`space.yaml:2: store.etcd.dial_timeout: bad duration "5": want a Go duration such as 10ms or 5s`},
		{"username without password", listen + "store: {etcd: {endpoints: [\"http://127.0.0.1:2379\"], prefix: /s/, username: sr}}\n",
			`space.yaml:2: store.etcd.password_file: missing: username "sr" needs password_file, the file with its password`},
		{"password without username", listen + "store: {etcd: {endpoints: [\"http://127.0.0.1:2379\"], prefix: /s/, password_file: /nonexistent/pw}}\n",
			`space.yaml:2: store.etcd.password_file: stat /nonexistent/pw: no such file or directory`},
		{"tls over http", listen + "store: {etcd: {endpoints: [\"http://127.0.0.1:2379\"], prefix: /s/, tls: {}}}\n",
			`space.yaml:2: store.etcd.endpoints: endpoint "http://127.0.0.1:2379" is plain HTTP while tls is set: write https://, or drop tls`},
		{"tls cert without key", listen + "store: {etcd: {endpoints: [\"https://127.0.0.1:2379\"], prefix: /s/, tls: {cert: c.pem}}}\n",
			`space.yaml:2: store.etcd.tls.key: missing: cert needs key, the PEM file with the client certificate's private key`},
		{"router id", storeFile + "  router_id: \"edge 1\"\n",
			`space.yaml:5: store.router_id: bad router id "edge 1": want up to 100 characters of A-Z, a-z, 0-9, ., _ and -, such as router-1`},
		{"cache dir", storeFile + "  cache_file: /nonexistent/dir/last.json\n",
			`space.yaml:5: store.cache_file: directory "/nonexistent/dir" of the cache file does not exist: create it, or choose a file in an existing directory`},
		{"unknown key", storeFile + "  etc: {}\n",
			`space.yaml:5: store: unknown key "etc": allowed keys are etcd, cache_file, router_id`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("space.yaml", []byte(tc.src))
			assert.Contains(t, problems(t, err), tc.want, "config:\n%s", tc.src)
		})
	}
}

// sharedLocal parses storeFile under dir.
func sharedLocal(t *testing.T, dir string) *Config {
	t.Helper()
	c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(storeFile))
	require.NoError(t, err)
	return c
}

// kv is a key at a revision.
func kv(rev int64, key, value string) KV { return KV{Key: key, Value: value, ModRevision: rev} }

func TestBuildShared(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCert(t, dir, "certs/shop.pem", "certs/shop-key.pem", "shop.example.com")
	local := sharedLocal(t, dir)
	s := BuildShared(local, []KV{
		kv(2, "space", "timeouts: {connect: 1s}\nlimits: {h2_max_streams: 10}\n"),
		kv(3, "apps/shop", "domains: [shop.example.com]\ntls: [{cert: certs/shop.pem, key: certs/shop-key.pem}]\ntimeouts: {response: 2m}\n"),
		kv(4, "apps/blog", "{name: blog, domains: [blog.example.com], features: [spaces-tls-modern]}"),
		kv(5, "dynos/shop/web.2", "{address: \"127.0.0.1:5002\", state: crashed}"),
		kv(6, "dynos/shop/web.1", "address: 127.0.0.1:5001\n"),
		kv(7, "maintenance/blog", "true"),
		kv(8, "clients/shop/c1", `{"serial": "01"}`),
		kv(9, "routers/edge-2", `{"revision": 8, "refused": []}`),
		kv(10, "acme/lock", "x"),
	}, nil)
	require.Empty(t, s.Refused)
	c := s.Config
	assert.Equal(t, "my-space", c.Space)
	assert.Equal(t, "127.0.0.1:8080", c.Listen.HTTP)
	assert.Equal(t, time.Second, c.Timeouts.Connect)
	assert.Equal(t, 10, c.Limits.H2MaxStreams)
	require.Len(t, c.Apps, 2)
	blog, shop := c.Apps[0], c.Apps[1]
	assert.Equal(t, "blog", blog.Name)
	assert.True(t, blog.Maintenance, "maintenance/blog is true")
	assert.Empty(t, blog.Dynos)
	assert.Equal(t, "shop", shop.Name)
	assert.Equal(t, []string{"shop.example.com"}, shop.Domains)
	assert.Equal(t, []Cert{{Cert: filepath.Join(dir, "certs/shop.pem"), Key: filepath.Join(dir, "certs/shop-key.pem")}}, shop.TLS)
	assert.Equal(t, time.Second, shop.Timeouts.Connect, "the space's timeouts merged")
	assert.Equal(t, 2*time.Minute, shop.Timeouts.Response)
	assert.Equal(t, []Dyno{{Name: "web.1", Address: "127.0.0.1:5001", State: StateUp}, {Name: "web.2", Address: "127.0.0.1:5002", State: StateCrashed}}, shop.Dynos)
	assert.Equal(t, map[string]string{"shop/c1": `{"serial": "01"}`}, s.Clients)
	keys := []string{}
	for _, kv := range s.InForce() {
		keys = append(keys, kv.Key)
	}
	assert.Equal(t, []string{"apps/blog", "apps/shop", "clients/shop/c1", "dynos/shop/web.1", "dynos/shop/web.2", "maintenance/blog", "space"}, keys)
}

func TestBuildSharedRefusesAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	local := sharedLocal(t, dir)
	good := []KV{
		kv(2, "apps/shop", "domains: [shop.example.com]"),
		kv(3, "apps/blog", "domains: [blog.example.com]"),
		kv(4, "dynos/shop/web.1", "address: 127.0.0.1:5001"),
	}
	first := BuildShared(local, good, nil)
	require.Empty(t, first.Refused)

	bad := []KV{
		kv(5, "apps/shop", "domains: [Shop.example.com, shop2.example.com]"),
		good[1],
		kv(6, "dynos/shop/web.1", "address: 127.0.0.1"),
		kv(7, "apps/new", "domains: [new.example.com]\nfeatures: [nope]\n"),
		kv(8, "apps/Bad_Name", "domains: [x.example.com]"),
		kv(9, "apps/docs", "domains: [docs.example.com]\ndynos: [{name: web.1, address: \"127.0.0.1:1\"}]\n"),
		kv(10, "apps/wiki", "name: wiki2\ndomains: [wiki.example.com]\n"),
		kv(11, "space", "timeouts: {connect: fast}"),
		kv(12, "maintenance/shop", "maybe"),
		kv(13, "other/key", "x"),
		kv(14, "dynos/shop/web 2", "address: 127.0.0.1:5002"),
		kv(15, "maintenance/X", "true"),
	}
	s := BuildShared(local, bad, first)
	got := map[string]string{}
	for _, r := range s.Refused {
		got[r.Key] = r.String()
	}
	assert.Equal(t, map[string]string{
		"apps/shop":        `etcd:apps/shop: domains: domain "Shop.example.com" is not lower case: write "shop.example.com"`,
		"dynos/shop/web.1": `etcd:dynos/shop/web.1: address: bad address "127.0.0.1": want host:port such as 127.0.0.1:8080`,
		"apps/new":         `etcd:apps/new: features: unknown feature "nope": known features are spaces-tls-salesforce, spaces-tls-modern, spaces-strict-tls, http-disable-http2, http-disable-keepalive-to-dyno, http-end-to-end-continue, spaces-extra-resolver`,
		"apps/Bad_Name":    `etcd:apps/Bad_Name: bad app name "Bad_Name" in the key: want 3 to 30 characters of a-z, 0-9 and -, starting with a letter`,
		"apps/docs":        `etcd:apps/docs: dynos: not in an app's key: write each dyno as the key dynos/docs/<dyno> with {address, state}`,
		"apps/wiki":        `etcd:apps/wiki: name: "wiki2" is not the app of the key, "wiki": write name: wiki, or leave name out`,
		"space":            `etcd:space: timeouts.connect: bad duration "fast": want a Go duration such as 10ms or 5s`,
		"maintenance/shop": `etcd:maintenance/shop: bad value "maybe": want true or false`,
		"other/key":        `etcd:other/key: unknown key: want space, apps/<app>, dynos/<app>/<dyno>, maintenance/<app>, clients/<app>/<id>, acme/... or routers/<id>`,
		"maintenance/X":    `etcd:maintenance/X: bad app name "X" in the key: want maintenance/<app>, the app 3 to 30 characters of a-z, 0-9 and -`,
		"dynos/shop/web 2": `etcd:dynos/shop/web 2: bad dyno name "web 2" in the key: want dynos/<app>/<dyno>, the dyno up to 100 characters of A-Z, a-z, 0-9, ., _ and -, such as web.1`,
	}, got)
	// The refused keys' last good values stay; the others serve as before.
	c := s.Config
	require.Len(t, c.Apps, 2, "blog and the last good shop")
	assert.Equal(t, "blog", c.Apps[0].Name)
	assert.Equal(t, "shop", c.Apps[1].Name)
	assert.Equal(t, []string{"shop.example.com"}, c.Apps[1].Domains, "the last good value of apps/shop")
	assert.Equal(t, []Dyno{{Name: "web.1", Address: "127.0.0.1:5001", State: StateUp}}, c.Apps[1].Dynos, "the last good dyno")
	assert.Equal(t, 5*time.Second, c.Timeouts.Connect, "the default: space never had a good value")

	// The next build keeps the last good values still.
	again := BuildShared(local, bad, s)
	assert.Len(t, again.Refused, len(s.Refused))
	assert.Equal(t, []string{"shop.example.com"}, again.Config.App("shop").Domains)
	// Fixed keys come into force.
	fixed := BuildShared(local, []KV{kv(20, "apps/shop", "domains: [shop2.example.com]"), good[1]}, again)
	assert.Empty(t, fixed.Refused)
	assert.Equal(t, []string{"shop2.example.com"}, fixed.Config.App("shop").Domains)
	assert.Empty(t, fixed.Config.App("shop").Dynos, "dynos/shop/web.1 was deleted")
}

func TestBuildSharedDomainConflict(t *testing.T) {
	t.Parallel()
	local := sharedLocal(t, t.TempDir())
	// blog claims shop's domain later: blog is refused.
	s := BuildShared(local, []KV{
		kv(3, "apps/shop", "domains: [shop.example.com]"),
		kv(5, "apps/blog", "domains: [blog.example.com, shop.example.com]"),
	}, nil)
	require.Len(t, s.Refused, 1)
	assert.Equal(t, `etcd:apps/blog: domains: domain "shop.example.com" is already a domain of app "shop" (key apps/shop, since revision 3): a domain belongs to one app, and the later claim is refused`,
		s.Refused[0].String())
	require.Len(t, s.Config.Apps, 1)
	assert.Equal(t, "shop", s.Config.Apps[0].Name)

	// shop changes later but still holds its domain since revision 3.
	s = BuildShared(local, []KV{
		kv(9, "apps/shop", "domains: [shop.example.com, www.shop.example.com]"),
		kv(5, "apps/blog", "domains: [blog.example.com, shop.example.com]"),
	}, s)
	require.Len(t, s.Refused, 1)
	assert.Equal(t, "apps/blog", s.Refused[0].Key)
	assert.Equal(t, []string{"shop.example.com", "www.shop.example.com"}, s.Config.App("shop").Domains)

	// blog had a good value: it stays in force when its new value claims a
	// domain held by shop.
	s = BuildShared(local, []KV{kv(9, "apps/shop", "domains: [shop.example.com]"), kv(10, "apps/blog", "domains: [blog.example.com]")}, s)
	require.Empty(t, s.Refused)
	s = BuildShared(local, []KV{kv(9, "apps/shop", "domains: [shop.example.com]"), kv(11, "apps/blog", "domains: [shop.example.com]")}, s)
	require.Len(t, s.Refused, 1)
	assert.Equal(t, "apps/blog", s.Refused[0].Key)
	assert.Equal(t, []string{"blog.example.com"}, s.Config.App("blog").Domains)

	// shop lets the domain go: blog's claim is the only one.
	s = BuildShared(local, []KV{kv(12, "apps/shop", "domains: [shop2.example.com]"), kv(11, "apps/blog", "domains: [shop.example.com]")}, s)
	require.Empty(t, s.Refused)
	assert.Equal(t, []string{"shop.example.com"}, s.Config.App("blog").Domains)
}

func TestBuildSharedSpaceChange(t *testing.T) {
	t.Parallel()
	local := sharedLocal(t, t.TempDir())
	apps := kv(3, "apps/shop", "domains: [shop.example.com]\ntls: auto\n")
	s := BuildShared(local, []KV{apps}, nil)
	require.Len(t, s.Refused, 1, "tls: auto without acme")
	assert.Contains(t, s.Refused[0].Problem, "tls: auto needs the acme section")
	s = BuildShared(local, []KV{
		kv(4, "space", "acme: {directory: \"https://acme.example.com/dir\", agree_tos: true, storage: /nonexistent/acme}"),
		apps,
	}, s)
	require.Empty(t, s.Refused, "the app is decoded again against the new space")
	assert.True(t, s.Config.App("shop").TLSAuto)
	require.NotNil(t, s.Config.ACME)
}

func TestBuildSharedDynoTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCA(t, dir, "ca/dynos.pem", "", "dynos")
	local := sharedLocal(t, dir)
	s := BuildShared(local, []KV{
		kv(3, "apps/shop", "domains: [shop.example.com]\ndyno_tls: {mode: verify-full, trust: [ca/dynos.pem]}\n"),
		kv(4, "dynos/shop/web.1", "address: 10.0.1.5:5000"),
		kv(5, "dynos/shop/web.2", "address: web-2.shop.internal:5000"),
	}, nil)
	require.Len(t, s.Refused, 1)
	assert.Equal(t, "dynos/shop/web.1", s.Refused[0].Key)
	assert.Contains(t, s.Refused[0].Problem, "set dyno_tls.server_name in apps/shop")
	assert.Equal(t, []Dyno{{Name: "web.2", Address: "web-2.shop.internal:5000", State: StateUp}}, s.Config.App("shop").Dynos)
}

func TestExportKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCert(t, dir, "certs/shop.pem", "certs/shop-key.pem", "shop.example.com")
	src := `space: my-space
listen: {http: "127.0.0.1:8080"}
timeouts: {connect: 2s}
apps:
  - name: shop
    <<: {features: [spaces-tls-modern], timeouts: {response: 1m}}
    domains: [shop.example.com]
    tls: [{cert: certs/shop.pem, key: certs/shop-key.pem}]
    dynos:
      - {name: web.1, address: "127.0.0.1:5001"}
      - {name: web.2, address: "127.0.0.1:5002", state: crashed}
  - {name: blog, domains: [blog.example.com]}
`
	path := filepath.Join(dir, "space.yaml")
	kvs, err := ExportKeys(path, []byte(src))
	require.NoError(t, err)
	got := map[string]string{}
	for _, kv := range kvs {
		got[kv.Key] = kv.Value
	}
	assert.Equal(t, map[string]string{
		"space":            "timeouts: {connect: 2s}",
		"apps/shop":        "name: shop\ndomains: [shop.example.com]\ntls: [{cert: certs/shop.pem, key: certs/shop-key.pem}]\nfeatures: [spaces-tls-modern]\ntimeouts: {response: 1m}",
		"dynos/shop/web.1": "{address: \"127.0.0.1:5001\"}",
		"dynos/shop/web.2": "{address: \"127.0.0.1:5002\", state: crashed}",
		"apps/blog":        "name: blog\ndomains: [blog.example.com]",
	}, got)
	// The keys build the same apps as the file, from a file with store
	// beside it.
	file, err := Parse(path, []byte(src))
	require.NoError(t, err)
	s := BuildShared(sharedLocal(t, dir), kvs, nil)
	require.Empty(t, s.Refused)
	assert.Equal(t, file.Timeouts, s.Config.Timeouts)
	require.Len(t, s.Config.Apps, 2)
	assert.Equal(t, file.App("shop"), s.Config.App("shop"))
	assert.Equal(t, file.App("blog"), s.Config.App("blog"))

	_, err = ExportKeys(path, []byte("listen: {http: \":0\"}\napps: []\n"))
	assert.Contains(t, problems(t, err), path+":2: apps: no app: want a list with at least one app, each with name and domains")
	_, err = ExportKeys(path, []byte(storeFile))
	assert.ErrorContains(t, err, "has a store section")
}
