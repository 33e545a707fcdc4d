package config

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// docsPath is the config reference, from this package's directory.
var docsPath = filepath.Join("..", "docs", "config.md")

// acceptedKeys returns the path of every key the decoder accepts, as
// docs/config.md writes them (limits.connections, apps[].dynos[].state),
// taken from the decoder's own tables: a key added to a table is in the
// list. Every key of a table is classified as holding a value or a nested
// table, so that a new nested section fails here until its keys are
// walked too.
func acceptedKeys(t *testing.T) []string {
	t.Helper()
	d := &decoder{}
	var (
		c     Config
		a     App
		nodes appNodes
		apps  *yaml.Node
	)
	var out []string
	// walk adds the keys of fs under prefix. nested gives the tables of
	// the keys that hold one, whose keys all hold values; values names the
	// other keys of fs.
	walk := func(prefix string, fs []field, nested map[string]func() (string, []field), values ...string) {
		for _, f := range fs {
			key := join(prefix, f.name)
			out = append(out, key)
			if sub, ok := nested[f.name]; ok {
				subPrefix, subFields := sub()
				for _, sf := range subFields {
					out = append(out, join(join(prefix, subPrefix), sf.name))
				}
				continue
			}
			assert.Contains(t, values, f.name,
				"key %s: add it to acceptedKeys as a value or with its nested table", key)
		}
	}
	table := func(prefix string, fs []field) func() (string, []field) {
		return func() (string, []field) { return prefix, fs }
	}
	walk("", d.rootFields(&c, &apps), map[string]func() (string, []field){
		"listen":    table("listen", d.listenFields(&c.Listen)),
		"log":       table("log", d.logFields(&c.Log)),
		"timeouts":  table("timeouts", d.timeoutFields(&c.Timeouts)),
		"limits":    table("limits", d.limitFields(&c.Limits)),
		"buffering": table("buffering", d.bufferingFields(&c.Buffering)),
		"acme":      table("acme", d.acmeFields(&ACME{})),
	}, "space", "space_ca", "admin", "apps", "store")
	// admin nests tables three deep (auth.roles[]), so it is walked as
	// prefixes of its own.
	var nodes2 adminNodes
	walk("admin", d.adminFields(&Admin{}, &nodes2), map[string]func() (string, []field){
		"tls": table("tls", d.adminCertFields(&Cert{})),
	}, "auth")
	var roleApps *yaml.Node
	walk("admin.auth", d.adminAuthFields(&AdminAuth{}, &nodes2), map[string]func() (string, []field){
		"roles": table("roles[]", d.roleFields(&RoleMapping{}, &roleApps)),
	}, "issuer", "client_id", "client_secret_file", "redirect_url", "groups_claim", "authz_ttl")
	// store nests tables three deep (etcd.tls), so each level is walked
	// as a prefix of its own.
	var etcdNode, tlsNode *yaml.Node
	walk("store", d.storeFields(&Store{}, &etcdNode), nil, "etcd", "cache_file", "router_id")
	walk("store.etcd", d.etcdFields(&Etcd{}, &tlsNode), map[string]func() (string, []field){
		"tls": table("tls", d.etcdTLSFields(&EtcdTLS{})),
	}, "endpoints", "prefix", "dial_timeout", "username", "password_file")
	// space_ca nests a table two deep (previous[]), so it is walked as a
	// prefix of its own.
	var previous *yaml.Node
	walk("space_ca", d.spaceCAFields(&SpaceCA{}, &previous), map[string]func() (string, []field){
		"previous": table("previous[]", d.previousFields(&PreviousCA{})),
	}, "cert", "key", "state_dir")
	var cidr string
	walk("apps[]", d.appFields(&a, &nodes), map[string]func() (string, []field){
		"timeouts": table("timeouts", d.timeoutFields(&a.Timeouts)),
		"tls":      table("tls[]", d.certFields(&Cert{})),
		"dynos":    table("dynos[]", d.dynoFields(&Dyno{}, "", nil)),
		"mtls":     table("mtls", d.mtlsFields(&MTLS{}, false)),
		"ip_rules": table("ip_rules[]", d.ipRuleFields(&IPRule{}, &cidr)),
		"dyno_tls": table("dyno_tls", d.dynoTLSFields(&DynoTLS{})),
	}, "name", "domains", "features", "maintenance", "config_vars")
	return out
}

// TestDocsListEveryKey: docs/config.md documents every key the decoder
// accepts, each written `key.path`, so a key added without its
// documentation fails here.
func TestDocsListEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(docsPath)
	require.NoError(t, err)
	doc := string(data)
	keys := acceptedKeys(t)
	require.Contains(t, keys, "limits.h2_max_streams", "the walk of the decoder's tables")
	require.Contains(t, keys, "apps[].dynos[].address", "the walk of the decoder's tables")
	require.Contains(t, keys, "space_ca.previous[].retire_at", "the walk of the decoder's tables")
	require.Contains(t, keys, "apps[].ip_rules[].cidr", "the walk of the decoder's tables")
	require.Contains(t, keys, "acme.renew_before", "the walk of the decoder's tables")
	require.Contains(t, keys, "apps[].tls[].serve_from", "the walk of the decoder's tables")
	require.Contains(t, keys, "apps[].dyno_tls.server_name", "the walk of the decoder's tables")
	require.Contains(t, keys, "admin.auth.roles[].apps", "the walk of the decoder's tables")
	require.Contains(t, keys, "admin.tls.key", "the walk of the decoder's tables")
	require.Contains(t, keys, "store.etcd.tls.cert", "the walk of the decoder's tables")
	for _, k := range keys {
		assert.Contains(t, doc, "`"+k+"`", "%s does not document key %s", docsPath, k)
	}
}

// TestDocsProblems: the error messages docs/config.md quotes are the ones
// Parse gives. Each case is a broken file; every problem it has, written
// KEY: MSG, must be in the docs word for word.
func TestDocsProblems(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(docsPath)
	require.NoError(t, err)
	doc := string(data)
	const listen = "listen: {http: \"127.0.0.1:8080\"}\n"
	const app = "apps: [{name: shop, domains: [shop.example.com]}]\n"
	const shop = "apps:\n  - name: shop\n    domains: [shop.example.com]\n"
	cases := []struct{ name, src string }{
		{"unknown key", listen + app + "limit: {}\n"},
		{"no listener", "listen: {admin: \"127.0.0.1:9090\"}\n" + app},
		{"bad address", "listen: {http: 127.0.0.1}\n" + app},
		{"bad port", "listen: {http: \"127.0.0.1:80808\"}\n" + app},
		{"same address", "listen: {http: \"127.0.0.1:8080\", admin: \"127.0.0.1:8080\"}\n" + app},
		{"log router", listen + app + "log: {router: \"\"}\n"},
		{"log source", listen + app + "log: {source: \"heroku router\"}\n"},
		{"log level", listen + app + "log: {level: verbose}\n"},
		{"log redact", listen + app + "log: {redact: token}\n"},
		{"duration", listen + app + "timeouts: {connect: 5}\n"},
		{"zero duration", listen + app + "timeouts: {response: 0s}\n"},
		{"size", listen + app + "limits: {header_bytes: 0}\n"},
		{"connections", listen + app + "limits: {connections: -1}\n"},
		{"connections per client", listen + app + "limits: {connections_per_client: 0}\n"},
		{"requests per client", listen + app + "limits: {requests_per_client: 0}\n"},
		{"min transfer rate", listen + app + "limits: {min_transfer_rate: -1}\n"},
		{"h2 max streams", listen + app + "limits: {h2_max_streams: 0}\n"},
		{"buffering bytes", listen + app + "buffering: {bytes: 0}\n"},
		{"request bytes", listen + app + "buffering: {request_bytes: -1}\n"},
		{"no app", listen + "apps: []\n"},
		{"app name", listen + "apps: [{name: Shop, domains: [shop.example.com]}]\n"},
		{"app name missing", listen + "apps: [{domains: [shop.example.com]}]\n"},
		{"app name twice", listen + "apps: [{name: shop, domains: [a.example.com]}, {name: shop, domains: [b.example.com]}]\n"},
		{"domains missing", listen + "apps: [{name: shop}]\n"},
		{"domain case", listen + "apps: [{name: shop, domains: [Shop.example.com]}]\n"},
		{"domain port", listen + "apps: [{name: shop, domains: [\"shop.example.com:443\"]}]\n"},
		{"domain wildcard", listen + "apps: [{name: shop, domains: [\"*.com\"]}]\n"},
		{"domain of two apps", listen + "apps: [{name: shop, domains: [shop.example.com]}, {name: blog, domains: [shop.example.com]}]\n"},
		{"unknown feature", listen + shop + "    features: [spaces-tls-moden]\n"},
		{"retired feature", listen + shop + "    features: [spaces-tls-legacy]\n"},
		{"resolver feature", listen + shop + "    features: [spaces-extra-resolver]\n"},
		{"maintenance", listen + shop + "    maintenance: yes\n"},
		{"error page", listen + shop + "    config_vars: {ERROR_PAGE_URL: /error.html}\n"},
		{"resolver", listen + shop + "    config_vars: {HEROKU_EXTRA_RESOLVER: dns.internal}\n"},
		{"tls key missing", listen + shop + "    tls: [{cert: shop.pem}]\n"},
		{"dyno", listen + shop + "    dynos: [{name: web 1, address: \"127.0.0.1:0\", state: down}]\n"},
		{"dyno missing", listen + shop + "    dynos: [{state: up}]\n"},
		{"dyno twice", listen + shop + "    dynos: [{name: web.1, address: \"a:1\"}, {name: web.1, address: \"b:1\"}]\n"},
		{"space_ca empty", listen + app + "space_ca: {}\n"},
		{"space_ca missing files", listen + app + "space_ca: {cert: ca/space-2026.pem, key: ca/space-2026-key.pem, state_dir: /nonexistent/ca}\n"},
		{"previous", listen + app + "space_ca:\n  cert: ca/space-2026.pem\n  key: ca/space-2026-key.pem\n  state_dir: /nonexistent/ca\n" +
			"  previous: [{retire_at: 2027-03-01}, {cert: ca/space-2025.pem}]\n"},
		{"mtls mode", listen + shop + "    mtls: {mode: requir, forward: XFCC}\n"},
		{"mtls without tls", listen + shop + "    mtls: {mode: require}\n"},
		{"mtls trust empty", listen + shop + "    tls: [{cert: certs/shop.pem, key: certs/shop-key.pem}]\n    mtls: {mode: require, trust: []}\n"},
		{"mtls trust", listen + shop + "    mtls: {trust: [space, space, \"\", ca/clients.pem]}\n"},
		{"ip rules", listen + shop + "    ip_rules:\n      - {cidr: 1.2.3.4/24}\n      - {cidr: 192.0.2.7}\n      - {cidr: office}\n" +
			"      - {description: x}\n      - 10.0.0.0/8\n      - {cidr: 10.0.0.0/8}\n      - {cidr: 10.0.0.0/8}\n"},
		{"ip rule 61", listen + shop + "    ip_rules:\n" + rules(61)},
		{"acme empty", listen + app + "acme: {}\n"},
		{"acme values missing", listen + app + "acme:\n  directory:\n  agree_tos:\n  storage:\n"},
		{"acme not agreed", listen + app + "acme:\n  directory: http://127.0.0.1:14000/dir\n  email: mailto:ops@example.com\n" +
			"  agree_tos: false\n  storage: /var/lib/spacerouter/acme\n  renew_before: 0s\n"},
		{"acme bad values", listen + app + "acme:\n  directory: acme.example.com/directory\n  email: ops\n  agree_tos: yes\n" +
			"  trusted_roots: ca/acme-roots.pem\n  storage: /var/lib/spacerouter/acme\n  renew_before: 30d\n"},
		{"tls auto", listen + "apps:\n  - name: shop\n    domains: [shop.example.com, \"*.shop.example.com\"]\n    tls: auto\n"},
		{"tls a string", listen + shop + "    tls: certs/shop.pem\n"},
		{"tls a mapping", listen + shop + "    tls: {cert: certs/shop.pem, key: certs/shop-key.pem}\n"},
		{"serve_from", listen + shop + "    tls: [{cert: certs/shop.pem, key: certs/shop-key.pem, serve_from: 2027-03-01}]\n"},
		{"dyno_tls mode", listen + shop + "    dyno_tls: {mode: verify}\n"},
		{"dyno_tls verify-full", listen + shop + "    dynos: [{name: web.1, address: \"10.0.1.5:5000\"}]\n    dyno_tls: {mode: verify-full}\n"},
		{"dyno_tls verify-ca", listen + shop + "    dyno_tls: {mode: verify-ca, trust: [], server_name: 10.0.1.5}\n"},
		{"admin unknown key", "listen: {http: \":0\", admin: \"127.0.0.1:9090\"}\n" + app + "admin: {auht: {}, tls: {cert: certs/shop.pem, serve_from: 2027-01-01T00:00:00Z}}\n"},
		{"admin auth empty", "listen: {http: \":0\", admin: \"127.0.0.1:9090\"}\n" + app + "admin: {auth: {}}\n"},
		{"admin auth off loopback", "listen: {http: \":0\", admin: \"0.0.0.0:9090\"}\n" + app + "admin:\n  auth:\n" +
			"    issuer: http://idp.example.com/\n    client_id: c\n    client_secret_file: oidc-secret\n" +
			"    redirect_url: https://admin.example.com/callback\n    groups_claim: \"\"\n    authz_ttl: 10m\n    roles: []\n"},
		{"admin auth without listener", listen + app + "admin:\n  auth:\n" +
			"    issuer: idp.example.com\n    client_id: c\n    client_secret_file: \"\"\n" +
			"    redirect_url: http://admin.example.com/auth/callback\n    authz_ttl: 0s\n    roles: [{group: g, role: admin}]\n"},
		{"admin auth URLs", "listen: {http: \":0\", admin: \"127.0.0.1:9090\"}\n" + app + "admin:\n  auth:\n" +
			"    issuer: https://idp.example.com/?tenant=1\n    client_id: c\n" +
			"    redirect_url: ftp://admin.example.com/auth/callback\n    roles:\n" +
			"      - {group: a, role: owner}\n      - {group: b, role: collaborator, apps: []}\n      - {group: c, role: admin, apps: [shop]}\n" +
			"      - {group: d, role: superuser}\n      - {role: owner, apps: [shop, shop, docs, \"\"]}\n      - {group: e, role: owner, apps: [shop], app: shop}\n"},
		{"store apps", storeFile + app},
		{"store endpoints", listen + "store: {etcd: {endpoints: [\"127.0.0.1:2379\", \"http://etcd\"], prefix: /s}}\n"},
		{"store tls", listen + "store: {etcd: {endpoints: [\"http://127.0.0.1:2379\"], prefix: /s/, tls: {cert: c.pem}, username: sr}}\n"},
		{"store password", listen + "store: {etcd: {endpoints: [\"https://127.0.0.1:2379\"], prefix: /s/, tls: {key: k.pem}, password_file: \"\"}}\n"},
		{"dyno_tls trust", listen + shop + "    dyno_tls: {mode: verify-ca, trust: [ca/dynos.pem, ./ca/dynos.pem, \"\"], server_name: web..internal}\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("space.yaml", []byte(tc.src))
			errs, ok := errors.AsType[*Errors](err)
			require.True(t, ok, "config:\n%s\nerror %v: want problems", tc.src, err)
			for _, p := range errs.Problems {
				msg := p.Msg
				if p.Key != "" {
					msg = p.Key + ": " + msg
				}
				assert.True(t, strings.Contains(doc, msg), "%s does not quote this problem:\n%s\nof\n%s", docsPath, msg, tc.src)
			}
		})
	}
}

// TestDocsWarnings: the warnings docs/config.md quotes are the ones Parse
// gives.
func TestDocsWarnings(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(docsPath)
	require.NoError(t, err)
	doc := string(data)
	c, err := Parse("space.yaml", []byte(`listen: {https: "127.0.0.1:8443"}
limits: {connections: 500}
apps:
  - name: shop
    domains: [shop.example.com]
    features: [spaces-strict-tls]
`))
	require.NoError(t, err)
	warnings := c.Warnings()
	require.Len(t, warnings, 3)
	for _, w := range warnings {
		_, msg, _ := strings.Cut(w, ": ") // drop "space.yaml:LINE"
		assert.Contains(t, doc, msg, "%s does not quote this warning", docsPath)
	}
}

// docsDir makes the files the docs' file problems and warnings name, as
// they name them (ca/space-2026.pem), under a temporary directory, and
// returns it with a replacer that turns the directory's paths in messages
// back into the docs' (ca/space-2026.pem, /var/lib/spacerouter/ca).
func docsDir(t *testing.T) (string, *strings.Replacer) {
	t.Helper()
	dir := t.TempDir()
	return dir, strings.NewReplacer(`"`+dir+`/var/`, `"/var/`, dir+"/", "")
}

// TestDocsFileProblems: the problems docs/config.md quotes about the
// contents of CA files and trust bundles are the ones Parse gives.
func TestDocsFileProblems(t *testing.T) {
	t.Parallel()
	doc := string(readFile(t, docsPath))
	const head = "listen: {http: \":0\"}\napps: [{name: shop, domains: [shop.example.com]}]\n"
	const sc = "space_ca: {cert: ca/space-2026.pem, key: ca/space-2026-key.pem, state_dir: state}\n"
	cases := []struct {
		name  string
		files func(t *testing.T, dir string)
		src   string
	}{
		{"no PEM", func(t *testing.T, dir string) {
			writeFile(t, dir, "ca/space-2026.pem", []byte("junk\n"))
			writeFile(t, dir, "ca/space-2026-key.pem", []byte("junk\n"))
		}, head + sc},
		{"bad DER", func(t *testing.T, dir string) {
			writeFile(t, dir, "ca/space-2026.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
			writeFile(t, dir, "ca/space-2026-key.pem", []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
		}, head + sc},
		{"two certificates", func(t *testing.T, dir string) {
			a, b := makeCert(t, caTemplate("a"), nil), makeCert(t, caTemplate("b"), nil)
			writeFile(t, dir, "ca/space-2026.pem", append(a.certPEM, b.certPEM...))
			writeFile(t, dir, "ca/space-2026-key.pem", a.keyPEM)
		}, head + sc},
		{"not a CA", func(t *testing.T, dir string) {
			writeCert(t, dir, "ca/space-2026.pem", "ca/space-2026-key.pem", "shop.example.com")
		}, head + sc},
		{"P-384", func(t *testing.T, dir string) {
			writeFile(t, dir, "ca/space-2026.pem", makeCert(t, caTemplate("space CA"), newKey(t, elliptic.P384())).certPEM)
		}, head + sc},
		{"RSA 1024", func(t *testing.T, dir string) {
			key, err := rsa.GenerateKey(rand.Reader, 1024)
			require.NoError(t, err)
			writeFile(t, dir, "ca/space-2026.pem", makeCert(t, caTemplate("space CA"), key).certPEM)
		}, head + sc},
		{"key mismatch and previous", func(t *testing.T, dir string) {
			writeCA(t, dir, "ca/space-2026.pem", "", "space CA")
			writeCA(t, dir, "ca/other.pem", "ca/space-2026-key.pem", "other CA")
			a, b := makeCert(t, caTemplate("a"), nil), makeCert(t, caTemplate("b"), nil)
			writeFile(t, dir, "ca/space-2025.pem", append(a.certPEM, b.certPEM...))
			writeFile(t, dir, "var/lib/spacerouter/ca", []byte("a file\n"))
		}, head + "space_ca:\n  cert: ca/space-2026.pem\n  key: ca/space-2026-key.pem\n  state_dir: DIR/var/lib/spacerouter/ca\n" +
			"  previous: [{cert: ca/space-2025.pem, retire_at: 2099-01-01T00:00:00Z}, {cert: ca/space-2026.pem, retire_at: 2099-01-01T00:00:00Z}]\n"},
		{"bundles", func(t *testing.T, dir string) {
			writeFile(t, dir, "ca/junk.pem", []byte("junk\n"))
			writeCert(t, dir, "leaf.pem", "leaf-key.pem", "client.example.com")
			writeFile(t, dir, "ca/clients.pem", append(makeCert(t, caTemplate("partner"), nil).certPEM, readFile(t, filepath.Join(dir, "leaf.pem"))...))
		}, "listen: {http: \":0\"}\napps: [{name: shop, domains: [shop.example.com], mtls: {trust: [ca/clients.pem]}}]\n"},
		{"acme files", func(t *testing.T, dir string) {
			writeFile(t, dir, "ca/acme-roots.pem", []byte("junk\n"))
			writeFile(t, dir, "var/lib/spacerouter/acme", []byte("a file\n"))
		}, head + "acme:\n  directory: https://acme-v02.api.letsencrypt.org/directory\n  agree_tos: true\n" +
			"  trusted_roots: ca/acme-roots.pem\n  storage: DIR/var/lib/spacerouter/acme\n"},
		{"admin secret empty", func(t *testing.T, dir string) {
			writeFile(t, dir, "oidc-secret", []byte("\n"))
		}, "listen: {http: \":0\", admin: \"127.0.0.1:9090\"}\n" + head[len("listen: {http: \":0\"}\n"):] +
			"admin: {auth: {issuer: https://idp.example.com/, client_id: c, client_secret_file: oidc-secret, " +
			"redirect_url: https://admin.example.com/auth/callback, roles: [{group: g, role: admin}]}}\n"},
		{"admin secret a directory", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "oidc-secret"), 0o700))
		}, "listen: {http: \":0\", admin: \"127.0.0.1:9090\"}\n" + head[len("listen: {http: \":0\"}\n"):] +
			"admin: {auth: {issuer: https://idp.example.com/, client_id: c, client_secret_file: oidc-secret, " +
			"redirect_url: https://admin.example.com/auth/callback, roles: [{group: g, role: admin}]}}\n"},
		{"dyno bundles", func(t *testing.T, dir string) {
			writeFile(t, dir, "ca/dynos.pem", []byte("junk\n"))
		}, "listen: {http: \":0\"}\napps: [{name: shop, domains: [shop.example.com], dyno_tls: {mode: verify-ca, trust: [ca/dynos.pem]}}]\n"},
		{"staged certificates", func(t *testing.T, dir string) {
			until := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
			writeCertValid(t, dir, "certs/shop.pem", "certs/shop-key.pem", time.Now().Add(-time.Hour), until, "shop.example.com", "*.shop.example.com")
			writeCertValid(t, dir, "certs/shop-2099.pem", "certs/shop-2099-key.pem", time.Now().Add(-time.Hour), until, "shop.example.com")
			writeCertValid(t, dir, "certs/shop-short.pem", "certs/shop-short-key.pem", time.Now().Add(-time.Hour),
				time.Date(2098, 12, 31, 0, 0, 0, 0, time.UTC), "shop.example.com", "*.shop.example.com")
			writeCertValid(t, dir, "certs/shop-late.pem", "certs/shop-late-key.pem", time.Date(2099, 3, 1, 0, 0, 0, 0, time.UTC), until,
				"shop.example.com", "*.shop.example.com")
		}, "listen: {https: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com, \"*.shop.example.com\"]\n    tls:\n" +
			"      - {cert: certs/shop.pem, key: certs/shop-key.pem}\n" +
			"      - {cert: certs/shop-2099.pem, key: certs/shop-2099-key.pem, serve_from: 2099-01-01T00:00:00Z}\n" +
			"      - {cert: certs/shop-short.pem, key: certs/shop-short-key.pem, serve_from: 2099-01-01T00:00:00Z}\n" +
			"      - {cert: certs/shop-late.pem, key: certs/shop-late-key.pem, serve_from: 2099-01-01T00:00:00Z}\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, strip := docsDir(t)
			tc.files(t, dir)
			src := strings.ReplaceAll(tc.src, "DIR", dir)
			_, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
			errs, ok := errors.AsType[*Errors](err)
			require.True(t, ok, "config:\n%s\nerror %v: want problems", src, err)
			for _, p := range errs.Problems {
				msg := strip.Replace(p.Key + ": " + p.Msg)
				assert.True(t, strings.Contains(doc, msg), "%s does not quote this problem:\n%s\nof\n%s", docsPath, msg, src)
			}
		})
	}
}

// TestDocsCAWarnings: the warnings docs/config.md quotes about CAs and
// mtls are the ones Parse gives.
func TestDocsCAWarnings(t *testing.T) {
	t.Parallel()
	doc := string(readFile(t, docsPath))
	dir, strip := docsDir(t)
	tmpl := caTemplate("space CA")
	tmpl.NotBefore = time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)
	tmpl.NotAfter = time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	expired := makeCert(t, tmpl, nil)
	writeFile(t, dir, "ca/space-2026.pem", expired.certPEM)
	writeFile(t, dir, "ca/space-2026-key.pem", expired.keyPEM)
	tmpl = caTemplate("future CA")
	tmpl.NotBefore = time.Date(2098, 1, 1, 0, 0, 0, 0, time.UTC)
	writeFile(t, dir, "ca/future.pem", makeCert(t, tmpl, nil).certPEM)
	writeCA(t, dir, "ca/space-2025.pem", "", "old CA")
	tmpl = caTemplate("old partner")
	tmpl.NotBefore, tmpl.NotAfter = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	a, b := makeCert(t, caTemplate("a"), nil), makeCert(t, caTemplate("b"), nil)
	writeFile(t, dir, "ca/clients.pem", slices.Concat(a.certPEM, b.certPEM, makeCert(t, tmpl, nil).certPEM))
	writeCert(t, dir, "docs.pem", "docs-key.pem", "docs.example.com")
	c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(`listen: {http: ":0"}
space_ca:
  cert: ca/space-2026.pem
  key: ca/space-2026-key.pem
  state_dir: state
  previous:
    - {cert: ca/space-2025.pem, retire_at: 2026-03-01T00:00:00Z}
    - {cert: ca/future.pem, retire_at: 2099-03-01T00:00:00Z}
apps:
  - {name: shop, domains: [shop.example.com], mtls: {trust: [space], forward: none}}
  - {name: blog, domains: [blog.example.com], mtls: {mode: off, forward: xfcc}}
  - name: docs
    domains: [docs.example.com]
    tls: [{cert: docs.pem, key: docs-key.pem}]
    mtls: {mode: require, trust: [ca/clients.pem]}
`))
	require.NoError(t, err)
	warnings := c.Warnings()
	require.Len(t, warnings, 6, "%q", warnings)
	for _, w := range warnings {
		_, msg, _ := strings.Cut(strip.Replace(w), ": ") // drop "space.yaml:LINE"
		assert.True(t, strings.Contains(doc, msg), "%s does not quote this warning:\n%s", docsPath, msg)
	}
}

// TestDocsLifecycleWarnings: the warnings docs/config.md quotes about
// acme, tls: auto, staged certificates and dyno_tls are the ones Parse
// gives.
func TestDocsLifecycleWarnings(t *testing.T) {
	t.Parallel()
	doc := string(readFile(t, docsPath))
	dir, strip := docsDir(t)
	tmpl := caTemplate("dynos 2025")
	tmpl.NotBefore = time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)
	tmpl.NotAfter = time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	old := makeCert(t, tmpl, nil)
	tmpl = caTemplate("dynos 2098")
	tmpl.NotBefore = time.Date(2098, 1, 1, 0, 0, 0, 0, time.UTC)
	writeFile(t, dir, "ca/dynos.pem", slices.Concat(makeCert(t, caTemplate("dynos 2026"), nil).certPEM, old.certPEM, makeCert(t, tmpl, nil).certPEM))
	writeCA(t, dir, "ca/dynos-2026.pem", "", "dynos 2026")
	tmpl = caTemplate("old root")
	tmpl.NotBefore = time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)
	tmpl.NotAfter = time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	writeFile(t, dir, "ca/acme-roots.pem", makeCert(t, tmpl, nil).certPEM)
	c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(`listen: {http: ":0"}
acme: {directory: "https://127.0.0.1:14000/dir", agree_tos: true, trusted_roots: ca/acme-roots.pem, storage: acme}
apps:
  - {name: shop, domains: [shop.example.com], tls: auto, dyno_tls: {trust: [ca/dynos.pem], server_name: web.shop.internal}}
  - {name: blog, domains: [blog.example.com], dyno_tls: {mode: require, trust: [ca/dynos-2026.pem]}}
  - {name: docs, domains: [docs.example.com], dyno_tls: {mode: verify-ca, trust: [ca/dynos-2026.pem], server_name: web.shop.internal}}
`))
	require.NoError(t, err)
	warnings := c.Warnings()
	require.Len(t, warnings, 7, "%q", warnings)
	for _, w := range warnings {
		_, msg, _ := strings.Cut(strip.Replace(w), ": ") // drop "space.yaml:LINE"
		assert.True(t, strings.Contains(doc, msg), "%s does not quote this warning:\n%s", docsPath, msg)
	}
}
