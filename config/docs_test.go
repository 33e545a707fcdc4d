package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	}, "space", "apps")
	walk("apps[]", d.appFields(&a, &nodes), map[string]func() (string, []field){
		"timeouts": table("timeouts", d.timeoutFields(&a.Timeouts)),
		"tls":      table("tls[]", d.certFields(&Cert{})),
		"dynos":    table("dynos[]", d.dynoFields(&Dyno{}, "", nil)),
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
				assert.Contains(t, doc, msg, "%s does not quote this problem of\n%s", docsPath, tc.src)
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
