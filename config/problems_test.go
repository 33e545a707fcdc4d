package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// app1 is a valid first app line, for cases about other keys.
const app1 = "apps: [{name: shop, domains: [shop.example.com]}]\n"

// rootKeys are the top-level keys, as messages list them.
const rootKeys = "space, listen, log, timeouts, limits, buffering, space_ca, acme, admin, apps, store"

// agreeTOSMsg is what a problem of acme.agree_tos says after "missing: "
// or "false: ".
const agreeTOSMsg = "the CA issues certificates only to an account that agrees to its terms of service: " +
	"read them (meta.termsOfService in the directory) and set agree_tos: true"

// appKeys are the keys of an app, as messages list them.
const appKeys = "name, domains, tls, features, maintenance, timeouts, config_vars, dynos, mtls, ip_rules, dyno_tls"

func TestParseProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		src  string
		want []string // every problem, exactly, in order
	}{
		// The file as a whole.
		{"empty file", "", []string{
			`t.yaml: empty file: want a mapping with at least listen and apps`}},
		{"comments only", "# nothing\n", []string{
			`t.yaml: empty file: want a mapping with at least listen and apps`}},
		{"root is a list", "- a\n- b\n", []string{
			`t.yaml:1: want a mapping with keys ` + rootKeys + `, got a list`}},
		{"two documents", "listen: {http: \":0\"}\n" + app1 + "---\nspace: x\n", []string{
			`t.yaml:3: a second YAML document: want exactly one`}},
		{"unknown top-level key", "listen: {http: \":0\"}\n" + app1 + "lisen: {}\n", []string{
			`t.yaml:3: unknown key "lisen": allowed keys are ` + rootKeys}},
		{"duplicate key", "listen: {http: \":0\"}\n" + app1 + "listen: {http: \":1\"}\n", []string{
			`t.yaml:3: listen: key given twice: first at line 1`}},
		{"alias inside its anchor", "listen: &a {http: [*a]}\n" + app1, []string{
			`t.yaml:1: alias *a is inside its own anchor: want an anchor that does not contain itself`}},
		{"bad merge", "listen: {http: \":0\"}\n" + app1 + "log: {<<: 5}\n", []string{
			`t.yaml:3: log: bad merge key "<<": want a mapping or a list of mappings, got "5"`}},

		// listen
		{"no listen", app1, []string{
			`t.yaml:1: listen: no listener: set http, https or both, such as http: 127.0.0.1:8080`}},
		{"admin only", "listen: {admin: \":0\"}\n" + app1, []string{
			`t.yaml:1: listen: no listener: set http, https or both, such as http: 127.0.0.1:8080`}},
		{"unknown listen key", "listen:\n  http: \":0\"\n  htp: \":1\"\n" + app1, []string{
			`t.yaml:3: listen: unknown key "htp": allowed keys are http, https, admin`}},
		{"listen not a mapping", "listen: \":0\"\n" + app1, []string{
			`t.yaml:1: listen: want a mapping with keys http, https, admin, got ":0"`,
			`t.yaml:1: listen: no listener: set http, https or both, such as http: 127.0.0.1:8080`}},
		{"listen address without port", "listen: {http: 127.0.0.1}\n" + app1, []string{
			`t.yaml:1: listen.http: bad address "127.0.0.1": want host:port such as 127.0.0.1:8080`}},
		{"listen port too big", "listen: {https: \"127.0.0.1:65536\"}\n" + app1, []string{
			`t.yaml:1: listen.https: bad port "65536" in "127.0.0.1:65536": want a number from 0 to 65535`}},
		{"listen port by name", "listen: {http: \":0\", admin: \"localhost:http\"}\n" + app1, []string{
			`t.yaml:1: listen.admin: bad port "http" in "localhost:http": want a number from 0 to 65535`}},
		{"listen bad host", "listen: {http: \"a..b:80\"}\n" + app1, []string{
			`t.yaml:1: listen.http: bad host "a..b" in "a..b:80": empty label: want labels separated by single dots`}},
		{"listen same address", "listen:\n  http: 127.0.0.1:8080\n  admin: 127.0.0.1:8080\n" + app1, []string{
			`t.yaml:1: listen.admin: address "127.0.0.1:8080" is also listen.http: want one address per listener`}},
		{"listen list", "listen: {http: [\":0\"]}\n" + app1, []string{
			`t.yaml:1: listen.http: want a string, got a list`,
			`t.yaml:1: listen: no listener: set http, https or both, such as http: 127.0.0.1:8080`}},

		// log
		{"log router empty", "listen: {http: \":0\"}\nlog: {router: \"\"}\n" + app1, []string{
			`t.yaml:2: log.router: empty: want stdout, stderr or a file path`}},
		{"log level", "listen: {http: \":0\"}\nlog: {level: verbose}\n" + app1, []string{
			`t.yaml:2: log.level: bad level "verbose": want debug, info, warn or error`}},
		{"log source", "listen: {http: \":0\"}\nlog: {source: \"heroku router\"}\n" + app1, []string{
			`t.yaml:2: log.source: bad source "heroku router": want one word without spaces, such as heroku[router]`}},
		{"log redact empty", "listen: {http: \":0\"}\nlog:\n  redact:\n    - token\n    - \"\"\n" + app1, []string{
			`t.yaml:5: log.redact: empty parameter name in the list`}},
		{"log redact string", "listen: {http: \":0\"}\nlog: {redact: token}\n" + app1, []string{
			`t.yaml:2: log.redact: want a list, got "token"`}},
		{"log not a mapping", "listen: {http: \":0\"}\nlog: [stdout]\n" + app1, []string{
			`t.yaml:2: log: want a mapping with keys router, source, level, redact, got a list`}},

		// timeouts, limits, buffering
		{"bad duration", "listen: {http: \":0\"}\ntimeouts:\n  connect: 5x\n" + app1, []string{
			`t.yaml:3: timeouts.connect: bad duration "5x": want a Go duration such as 10ms or 5s`}},
		{"duration without unit", "listen: {http: \":0\"}\ntimeouts: {idle: 5}\n" + app1, []string{
			`t.yaml:2: timeouts.idle: bad duration "5": want a Go duration such as 10ms or 5s`}},
		{"zero duration", "listen: {http: \":0\"}\ntimeouts: {shutdown: 0s}\n" + app1, []string{
			`t.yaml:2: timeouts.shutdown: bad duration "0s": want more than zero, such as 10ms or 5s`}},
		{"negative duration", "listen: {http: \":0\"}\ntimeouts: {dyno_keepalive: -1s}\n" + app1, []string{
			`t.yaml:2: timeouts.dyno_keepalive: bad duration "-1s": want more than zero, such as 10ms or 5s`}},
		{"duration missing", "listen: {http: \":0\"}\ntimeouts:\n  client:\n" + app1, []string{
			`t.yaml:3: timeouts.client: missing value: want a Go duration such as 10ms or 5s`}},
		{"unknown timeout", "listen: {http: \":0\"}\ntimeouts: {read: 1s}\n" + app1, []string{
			`t.yaml:2: timeouts: unknown key "read": allowed keys are connect, response, idle, client, keepalive, dyno_keepalive, shutdown`}},
		{"limit not a number", "listen: {http: \":0\"}\nlimits: {header_count: abc}\n" + app1, []string{
			`t.yaml:2: limits.header_count: bad number "abc": want a whole number greater than zero, such as 1000`}},
		{"limit quoted", "listen: {http: \":0\"}\nlimits: {header_bytes: \"8192\"}\n" + app1, []string{
			`t.yaml:2: limits.header_bytes: bad number "8192": want a whole number greater than zero, such as 524288`}},
		{"limit float", "listen: {http: \":0\"}\nlimits: {method_bytes: 1.5}\n" + app1, []string{
			`t.yaml:2: limits.method_bytes: bad number "1.5": want a whole number greater than zero, such as 127`}},
		{"limit zero", "listen: {http: \":0\"}\nlimits: {concurrency_per_dyno: 0}\n" + app1, []string{
			`t.yaml:2: limits.concurrency_per_dyno: bad number "0": want a whole number greater than zero, such as 200`}},
		{"limit overflow", "listen: {http: \":0\"}\nlimits: {cookie_bytes: 99999999999999999999}\n" + app1, []string{
			`t.yaml:2: limits.cookie_bytes: bad number "99999999999999999999": want a whole number greater than zero, such as 524288`}},
		{"connections zero", "listen: {http: \":0\"}\nlimits: {connections: 0}\n" + app1, []string{
			`t.yaml:2: limits.connections: bad number "0": want a whole number greater than zero, such as 10000`}},
		{"connections per client not a number", "listen: {http: \":0\"}\nlimits: {connections_per_client: many}\n" + app1, []string{
			`t.yaml:2: limits.connections_per_client: bad number "many": want a whole number greater than zero, such as 1000`}},
		{"requests per client missing", "listen: {http: \":0\"}\nlimits:\n  requests_per_client:\n" + app1, []string{
			`t.yaml:3: limits.requests_per_client: missing value: want a whole number greater than zero, such as 100`}},
		{"min transfer rate negative", "listen: {http: \":0\"}\nlimits: {min_transfer_rate: -1}\n" + app1, []string{
			`t.yaml:2: limits.min_transfer_rate: bad number "-1": want a whole number of bytes per second, 0 or more, such as 256 (0 turns the check off)`}},
		{"min transfer rate with unit", "listen: {http: \":0\"}\nlimits: {min_transfer_rate: 1KB}\n" + app1, []string{
			`t.yaml:2: limits.min_transfer_rate: bad number "1KB": want a whole number of bytes per second, 0 or more, such as 256 (0 turns the check off)`}},
		{"min transfer rate null", "listen: {http: \":0\"}\nlimits: {min_transfer_rate: null}\n" + app1, []string{
			`t.yaml:2: limits.min_transfer_rate: missing value: want a whole number of bytes per second, 0 or more, such as 256 (0 turns the check off)`}},
		{"h2 max streams zero", "listen: {http: \":0\"}\nlimits: {h2_max_streams: 0}\n" + app1, []string{
			`t.yaml:2: limits.h2_max_streams: bad number "0": want a whole number from 1 to 2147483647, such as 250`}},
		{"h2 max streams too many", "listen: {http: \":0\"}\nlimits: {h2_max_streams: 2147483648}\n" + app1, []string{
			`t.yaml:2: limits.h2_max_streams: bad number "2147483648": want a whole number from 1 to 2147483647, such as 250`}},
		{"request bytes negative", "listen: {http: \":0\"}\nbuffering: {request_bytes: -1}\n" + app1, []string{
			`t.yaml:2: buffering.request_bytes: bad number "-1": want a whole number of bytes, 0 or more, such as 65536 (0: request bodies stream to the dyno from the start)`}},
		{"request bytes false", "listen: {http: \":0\"}\nbuffering: {request_bytes: false}\n" + app1, []string{
			`t.yaml:2: buffering.request_bytes: bad number "false": want a whole number of bytes, 0 or more, such as 65536 (0: request bodies stream to the dyno from the start)`}},
		{"unknown limit", "listen: {http: \":0\"}\nlimits: {connection: 5}\n" + app1, []string{
			`t.yaml:2: limits: unknown key "connection": allowed keys are request_line_bytes, method_bytes, header_name_bytes, ` +
				`header_bytes, cookie_bytes, headers_total_bytes, header_count, concurrency_per_dyno, connections, ` +
				`connections_per_client, requests_per_client, min_transfer_rate, h2_max_streams`}},
		{"buffering window zero", "listen: {http: \":0\"}\nbuffering: {window: 0ms, bytes: -1}\n" + app1, []string{
			`t.yaml:2: buffering.window: bad duration "0ms": want more than zero, such as 10ms or 5s`,
			`t.yaml:2: buffering.bytes: bad number "-1": want a whole number greater than zero, such as 16384`}},

		// apps
		{"no apps key", "listen: {http: \":0\"}\n", []string{
			`t.yaml:1: apps: no app: want a list with at least one app, each with name and domains`}},
		{"empty apps", "listen: {http: \":0\"}\napps: []\n", []string{
			`t.yaml:2: apps: no app: want a list with at least one app, each with name and domains`}},
		{"apps not a list", "listen: {http: \":0\"}\napps: shop\n", []string{
			`t.yaml:2: apps: want a list, got "shop"`}},
		{"app not a mapping", "listen: {http: \":0\"}\napps: [shop]\n", []string{
			`t.yaml:2: apps[0]: want a mapping with keys ` + appKeys + `, got "shop"`}},
		{"unknown app key", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    domain: x\n", []string{
			`t.yaml:5: apps[0]: unknown key "domain": allowed keys are ` + appKeys}},
		{"app name missing", "listen: {http: \":0\"}\napps:\n  - domains: [shop.example.com]\n", []string{
			`t.yaml:3: apps[0].name: missing: every app needs a name such as shop`}},
		{"app name empty", "listen: {http: \":0\"}\napps:\n  - name: \"\"\n    domains: [shop.example.com]\n", []string{
			`t.yaml:3: apps[0].name: missing value: every app needs a name such as shop`}},
		{"app name upper case", "listen: {http: \":0\"}\napps: [{name: Shop, domains: [shop.example.com]}]\n", []string{
			`t.yaml:2: apps[0].name: bad app name "Shop": want 3 to 30 characters of a-z, 0-9 and -, starting with a letter`}},
		{"app name short", "listen: {http: \":0\"}\napps: [{name: ab, domains: [shop.example.com]}]\n", []string{
			`t.yaml:2: apps[0].name: bad app name "ab": want 3 to 30 characters of a-z, 0-9 and -, starting with a letter`}},
		{"app name long", "listen: {http: \":0\"}\napps: [{name: a234567890123456789012345678901, domains: [shop.example.com]}]\n", []string{
			`t.yaml:2: apps[0].name: bad app name "a234567890123456789012345678901": want 3 to 30 characters of a-z, 0-9 and -, starting with a letter`}},
		{"app name twice", "listen: {http: \":0\"}\napps:\n  - {name: shop, domains: [a.example.com]}\n  - {name: shop, domains: [b.example.com]}\n", []string{
			`t.yaml:4: apps[1].name: app name "shop" is already the name of apps[0]: want unique names`}},
		{"maintenance not a bool", "listen: {http: \":0\"}\napps: [{name: shop, domains: [shop.example.com], maintenance: yes}]\n", []string{
			`t.yaml:2: apps[0].maintenance: bad value "yes": want true or false`}},

		// domains
		{"domains missing", "listen: {http: \":0\"}\napps:\n  - name: shop\n", []string{
			`t.yaml:3: apps[0].domains: missing: every app needs at least one domain, such as [shop.example.com]`}},
		{"domains empty", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: []\n", []string{
			`t.yaml:4: apps[0].domains: missing: every app needs at least one domain, such as [shop.example.com]`}},
		{"domains a string", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: shop.example.com\n", []string{
			`t.yaml:4: apps[0].domains: want a list, got "shop.example.com"`}},
		{"domain upper case", "listen: {http: \":0\"}\napps: [{name: shop, domains: [Shop.Example.com]}]\n", []string{
			`t.yaml:2: apps[0].domains: domain "Shop.Example.com" is not lower case: write "shop.example.com"`}},
		{"domain trailing dot", "listen: {http: \":0\"}\napps: [{name: shop, domains: [shop.example.com.]}]\n", []string{
			`t.yaml:2: apps[0].domains: domain "shop.example.com." ends with a dot: write "shop.example.com"`}},
		{"domain with port", "listen: {http: \":0\"}\napps: [{name: shop, domains: [\"shop.example.com:443\"]}]\n", []string{
			`t.yaml:2: apps[0].domains: domain "shop.example.com:443" has a port: write the host name only, "shop.example.com"`}},
		{"wildcard one label", "listen: {http: \":0\"}\napps: [{name: shop, domains: [\"*.com\"]}]\n", []string{
			`t.yaml:2: apps[0].domains: wildcard domain "*.com": want "*." followed by at least two labels, such as "*.example.com"`}},
		{"wildcard inside", "listen: {http: \":0\"}\napps: [{name: shop, domains: [\"a.*.example.com\", \"*example.com\"]}]\n", []string{
			`t.yaml:2: apps[0].domains: domain "a.*.example.com": a wildcard is allowed only as a leading "*.", such as "*.example.com"`,
			`t.yaml:2: apps[0].domains: domain "*example.com": a wildcard is allowed only as a leading "*.", such as "*.example.com"`}},
		{"domain bad characters", "listen: {http: \":0\"}\napps: [{name: shop, domains: [shop_1.example.com]}]\n", []string{
			`t.yaml:2: apps[0].domains: bad domain "shop_1.example.com": label "shop_1" has '_': want a-z, 0-9 and -`}},
		{"domain label hyphen", "listen: {http: \":0\"}\napps: [{name: shop, domains: [-shop.example.com]}]\n", []string{
			`t.yaml:2: apps[0].domains: bad domain "-shop.example.com": label "-shop" starts or ends with -`}},
		{"domain label too long", "listen: {http: \":0\"}\napps: [{name: shop, domains: [" + strings.Repeat("a", 64) + ".com]}]\n", []string{
			`t.yaml:2: apps[0].domains: bad domain "` + strings.Repeat("a", 64) + `.com": label "` + strings.Repeat("a", 64) + `" is longer than 63 characters`}},
		{"domain too long", "listen: {http: \":0\"}\napps: [{name: shop, domains: [" + strings.Repeat("abcdefghi.", 26) + "com]}]\n", []string{
			`t.yaml:2: apps[0].domains: domain "` + strings.Repeat("abcdefghi.", 26) + `com" is longer than 253 characters`}},
		{"domain twice in an app", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains:\n      - shop.example.com\n      - shop.example.com\n", []string{
			`t.yaml:6: apps[0].domains: domain "shop.example.com" is listed twice`}},
		{"domain of another app", "listen: {http: \":0\"}\napps:\n  - {name: shop, domains: [\"*.example.com\"]}\n  - {name: blog, domains: [\"*.example.com\"]}\n", []string{
			`t.yaml:4: apps[1].domains: domain "*.example.com" is already a domain of app "shop" (apps[0]): a domain belongs to one app`}},

		// features
		{"unknown feature", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    features: [x]\n", []string{
			`t.yaml:5: apps[0].features: unknown feature "x": known features are spaces-tls-salesforce, spaces-tls-modern, ` +
				`spaces-strict-tls, http-disable-http2, http-disable-keepalive-to-dyno, http-end-to-end-continue, spaces-extra-resolver`}},
		{"legacy feature", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    features: [spaces-tls-legacy]\n", []string{
			`t.yaml:5: apps[0].features: feature "spaces-tls-legacy" was retired in April 2023: choose spaces-tls-salesforce or spaces-tls-modern`}},
		{"feature twice", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    features:\n      - http-disable-http2\n      - http-disable-http2\n", []string{
			`t.yaml:7: apps[0].features: feature "http-disable-http2" is listed twice`}},
		{"features a string", "listen: {http: \":0\"}\napps: [{name: shop, domains: [shop.example.com], features: spaces-tls-modern}]\n", []string{
			`t.yaml:2: apps[0].features: want a list, got "spaces-tls-modern"`}},
		{"extra resolver without var", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    features: [spaces-extra-resolver]\n", []string{
			`t.yaml:5: apps[0].features: feature spaces-extra-resolver needs config var HEROKU_EXTRA_RESOLVER (IP or IP:port)`}},

		// config_vars
		{"error page relative", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    config_vars:\n      ERROR_PAGE_URL: /error.html\n", []string{
			`t.yaml:6: apps[0].config_vars.ERROR_PAGE_URL: bad URL "/error.html": want an absolute http:// or https:// URL`}},
		{"maintenance page ftp", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    config_vars:\n      MAINTENANCE_PAGE_URL: ftp://example.com/m.html\n", []string{
			`t.yaml:6: apps[0].config_vars.MAINTENANCE_PAGE_URL: bad URL "ftp://example.com/m.html": want an absolute http:// or https:// URL`}},
		{"resolver host name", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    config_vars:\n      HEROKU_EXTRA_RESOLVER: dns.internal:53\n", []string{
			`t.yaml:6: apps[0].config_vars.HEROKU_EXTRA_RESOLVER: bad resolver "dns.internal:53": want IP or IP:port, such as 10.0.0.2, 10.0.0.2:53 or [fd00::2]:53`}},
		{"resolver IPv6 without brackets", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    config_vars:\n      HEROKU_EXTRA_RESOLVER: \"fd00::2:53:x\"\n", []string{
			`t.yaml:6: apps[0].config_vars.HEROKU_EXTRA_RESOLVER: bad resolver "fd00::2:53:x": want IP or IP:port, such as 10.0.0.2, 10.0.0.2:53 or [fd00::2]:53`}},
		{"config var a list", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    config_vars:\n      X: [1]\n", []string{
			`t.yaml:6: apps[0].config_vars.X: want a string, got a list`}},
		{"config vars a list", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    config_vars: [X]\n", []string{
			`t.yaml:5: apps[0].config_vars: want a mapping of config var names to values, got a list`}},

		// dynos
		{"dyno without name and address", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dynos:\n      - state: up\n", []string{
			`t.yaml:6: apps[0].dynos[0].name: missing: every dyno needs a name such as web.1`,
			`t.yaml:6: apps[0].dynos[0].address: missing: every dyno needs an address host:port such as 127.0.0.1:5000`}},
		{"dyno name twice", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dynos:\n      - {name: web.1, address: \"127.0.0.1:5001\"}\n      - {name: web.1, address: \"127.0.0.1:5002\"}\n", []string{
			`t.yaml:7: apps[0].dynos[1].name: dyno name "web.1" is already the name of apps[0].dynos[0]: want unique names in an app`}},
		{"dyno bad name", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dynos:\n      - {name: web 1, address: \"127.0.0.1:5001\"}\n", []string{
			`t.yaml:6: apps[0].dynos[0].name: bad dyno name "web 1": want up to 100 characters of A-Z, a-z, 0-9, ., _ and -, such as web.1`}},
		{"dyno port 0", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dynos:\n      - name: web.1\n        address: 127.0.0.1:0\n", []string{
			`t.yaml:7: apps[0].dynos[0].address: bad port "0" in "127.0.0.1:0": want a number from 1 to 65535`}},
		{"dyno address without port", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dynos:\n      - {name: web.1, address: dyno1.internal}\n", []string{
			`t.yaml:6: apps[0].dynos[0].address: bad address "dyno1.internal": want host:port such as 127.0.0.1:8080`}},
		{"dyno bad host", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dynos:\n      - {name: web.1, address: \"dyno/1:5000\"}\n", []string{
			`t.yaml:6: apps[0].dynos[0].address: bad host "dyno/1" in "dyno/1:5000": label "dyno/1" has '/': want a-z, 0-9, - and _`}},
		{"dyno bad state", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dynos:\n      - {name: web.1, address: \"127.0.0.1:5001\", state: down}\n", []string{
			`t.yaml:6: apps[0].dynos[0].state: bad state "down": want up, crashed or starting`}},
		{"dyno unknown key", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dynos:\n      - name: web.1\n        adress: \"127.0.0.1:5001\"\n", []string{
			`t.yaml:6: apps[0].dynos[0].address: missing: every dyno needs an address host:port such as 127.0.0.1:5000`,
			`t.yaml:7: apps[0].dynos[0]: unknown key "adress": allowed keys are name, address, state`}},
		{"dynos a mapping", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dynos: {web.1: \"127.0.0.1:5001\"}\n", []string{
			`t.yaml:5: apps[0].dynos: want a list, got a mapping`}},

		// per-app timeouts
		{"app timeouts unknown key", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    timeouts: {respnse: 1s}\n", []string{
			`t.yaml:5: apps[0].timeouts: unknown key "respnse": allowed keys are connect, response, idle, client, keepalive, dyno_keepalive, shutdown`}},
		{"app timeouts bad duration", "listen: {http: \":0\"}\napps:\n  - {name: shop, domains: [a.example.com]}\n  - name: blog\n    domains: [b.example.com]\n    timeouts:\n      response: 2 minutes\n", []string{
			`t.yaml:7: apps[1].timeouts.response: bad duration "2 minutes": want a Go duration such as 10ms or 5s`}},

		// tls, without files
		{"tls without key", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    tls:\n      - cert: a.pem\n", []string{
			`t.yaml:6: apps[0].tls[0].key: missing: every certificate needs key, a PEM file with the private key`}},
		{"tls a mapping", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    tls: {cert: a.pem, key: a-key.pem}\n", []string{
			`t.yaml:5: apps[0].tls: want auto, for certificates over ACME, or a list of certificates such as [{cert: certs/shop.pem, key: certs/shop-key.pem}], got a mapping`}},

		// space_ca, without files: the paths named do not exist.
		{"space_ca empty", "listen: {http: \":0\"}\nspace_ca: {}\n" + app1, []string{
			`t.yaml:2: space_ca.cert: missing: the space CA needs cert, the PEM file of its certificate (spacerouter ca init makes it)`,
			`t.yaml:2: space_ca.key: missing: the space CA needs key, the PEM file of its private key (spacerouter ca init makes it)`,
			`t.yaml:2: space_ca.state_dir: missing: the space CA needs state_dir, the directory of issued client certificates, such as /var/lib/spacerouter/ca`}},
		{"space_ca not a mapping", "listen: {http: \":0\"}\nspace_ca: ca.pem\n" + app1, []string{
			`t.yaml:2: space_ca: want a mapping with keys cert, key, previous, state_dir, got "ca.pem"`}},
		{"space_ca files missing", "listen: {http: \":0\"}\nspace_ca:\n  cert: ca/none.pem\n  key: ca/none-key.pem\n  state_dir: ca/issued\n  crl: ca/crl.pem\n" + app1, []string{
			`t.yaml:3: space_ca.cert: stat ca/none.pem: no such file or directory: make the CA with spacerouter ca init -config t.yaml`,
			`t.yaml:4: space_ca.key: stat ca/none-key.pem: no such file or directory`,
			`t.yaml:6: space_ca: unknown key "crl": allowed keys are cert, key, previous, state_dir`}},
		{"space_ca key empty", "listen: {http: \":0\"}\nspace_ca:\n  cert:\n  key: \"\"\n  state_dir: [a]\n" + app1, []string{
			`t.yaml:3: space_ca.cert: missing value: the space CA needs cert, the PEM file of its certificate (spacerouter ca init makes it)`,
			`t.yaml:4: space_ca.key: missing value: the space CA needs key, the PEM file of its private key (spacerouter ca init makes it)`,
			`t.yaml:5: space_ca.state_dir: want a string, got a list`}},
		{"previous problems", "listen: {http: \":0\"}\nspace_ca:\n  cert: ca/none.pem\n  key: ca/none-key.pem\n  state_dir: ca/issued\n  previous:\n" +
			"    - {retire_at: 2027-03-01}\n    - {cert: ca/old.pem, retire_at: \"2027-03-01 00:00:00\"}\n    - cert: ca/old.pem\n      retire_at:\n    - ca/old.pem\n" + app1, []string{
			`t.yaml:3: space_ca.cert: stat ca/none.pem: no such file or directory: make the CA with spacerouter ca init -config t.yaml`,
			`t.yaml:4: space_ca.key: stat ca/none-key.pem: no such file or directory`,
			`t.yaml:7: space_ca.previous[0].retire_at: bad time "2027-03-01": want an RFC 3339 time such as 2027-03-01T00:00:00Z`,
			`t.yaml:7: space_ca.previous[0].cert: missing: every previous CA needs cert, the PEM file of its certificate`,
			`t.yaml:8: space_ca.previous[1].retire_at: bad time "2027-03-01 00:00:00": want an RFC 3339 time such as 2027-03-01T00:00:00Z`,
			`t.yaml:8: space_ca.previous[1].cert: stat ca/old.pem: no such file or directory`,
			`t.yaml:9: space_ca.previous[2].cert: stat ca/old.pem: no such file or directory`,
			`t.yaml:10: space_ca.previous[2].retire_at: missing value: every previous CA needs retire_at, when it stops being trusted, such as 2027-03-01T00:00:00Z`,
			`t.yaml:11: space_ca.previous[3]: want a mapping with keys cert, retire_at, got "ca/old.pem"`}},
		{"previous a mapping", "listen: {http: \":0\"}\nspace_ca:\n  cert: ca/none.pem\n  key: ca/none-key.pem\n  state_dir: ca/issued\n  previous: {cert: ca/old.pem}\n" + app1, []string{
			`t.yaml:3: space_ca.cert: stat ca/none.pem: no such file or directory: make the CA with spacerouter ca init -config t.yaml`,
			`t.yaml:4: space_ca.key: stat ca/none-key.pem: no such file or directory`,
			`t.yaml:6: space_ca.previous: want a list, got a mapping`}},

		// mtls, without files
		{"mtls without tls or space_ca", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    mtls: {mode: require}\n", []string{
			`t.yaml:5: apps[0].mtls: mode require needs a TLS certificate, and the app has no tls entries: add tls, or remove mtls`,
			`t.yaml:5: apps[0].mtls.trust: missing: mode require needs CAs to check client certificates against: ` +
				`add trust with PEM bundle paths, or a space_ca, which trust then defaults to`}},
		{"mtls optional with empty tls", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    tls: []\n    mtls:\n      mode: optional\n      trust: []\n", []string{
			`t.yaml:7: apps[0].mtls: mode optional needs a TLS certificate, and the app has no tls entries: add tls, or remove mtls`,
			`t.yaml:8: apps[0].mtls.trust: empty: mode optional needs at least one CA: list space and/or PEM bundle paths`}},
		{"mtls bad mode and forward", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    mtls: {mode: requir, forward: XFCC}\n", []string{
			`t.yaml:5: apps[0].mtls.mode: bad mode "requir": want off, optional or require`,
			`t.yaml:5: apps[0].mtls.forward: bad forward "XFCC": want xfcc or none`}},
		{"mtls not a mapping", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    mtls: require\n", []string{
			`t.yaml:5: apps[0].mtls: want a mapping with keys mode, trust, forward, got "require"`}},
		{"mtls unknown key", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    mtls: {mod: require}\n", []string{
			`t.yaml:5: apps[0].mtls: unknown key "mod": allowed keys are mode, trust, forward`}},
		{"trust space without space_ca", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    mtls:\n      trust:\n        - space\n        - \"\"\n        - space\n        - [x]\n", []string{
			`t.yaml:7: apps[0].mtls.trust: "space" names the space CA, but the file has no space_ca: add space_ca, or list PEM bundle paths`,
			`t.yaml:8: apps[0].mtls.trust: empty entry in the list: want space or a PEM bundle path`,
			`t.yaml:9: apps[0].mtls.trust: "space" is listed twice`,
			`t.yaml:10: apps[0].mtls.trust: want a string, got a list`}},
		{"trust a string", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    mtls: {trust: space}\n", []string{
			`t.yaml:5: apps[0].mtls.trust: want a list, got "space"`}},
		{"trust bundle missing", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    mtls: {trust: [ca/clients.pem, ./ca/clients.pem]}\n", []string{
			`t.yaml:5: apps[0].mtls.trust: stat ca/clients.pem: no such file or directory`,
			`t.yaml:5: apps[0].mtls.trust: "./ca/clients.pem" is listed twice`}},

		// ip_rules
		{"ip rule host bits", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    ip_rules:\n" +
			"      - {cidr: 1.2.3.4/24}\n      - {cidr: \"2001:db8::1/32\", description: VPN}\n      - {cidr: \"::ffff:10.1.2.3/104\"}\n", []string{
			`t.yaml:6: apps[0].ip_rules[0].cidr: bad cidr "1.2.3.4/24": host bits are set; did you mean 1.2.3.0/24?`,
			`t.yaml:7: apps[0].ip_rules[1].cidr: bad cidr "2001:db8::1/32": host bits are set; did you mean 2001:db8::/32?`,
			`t.yaml:8: apps[0].ip_rules[2].cidr: bad cidr "::ffff:10.1.2.3/104": host bits are set; did you mean ::ffff:10.0.0.0/104?`}},
		{"ip rule not a CIDR", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    ip_rules:\n" +
			"      - {cidr: 10.0.0.0/33}\n      - {cidr: office}\n      - {cidr: \"fe80::/64%eth0\"}\n      - {cidr: 010.0.0.0/8}\n      - {cidr: 10.0.0.0/8 }\n", []string{
			`t.yaml:6: apps[0].ip_rules[0].cidr: bad cidr "10.0.0.0/33": want an IPv4 or IPv6 network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48`,
			`t.yaml:7: apps[0].ip_rules[1].cidr: bad cidr "office": want an IPv4 or IPv6 network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48`,
			`t.yaml:8: apps[0].ip_rules[2].cidr: bad cidr "fe80::/64%eth0": want an IPv4 or IPv6 network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48`,
			`t.yaml:9: apps[0].ip_rules[3].cidr: bad cidr "010.0.0.0/8": want an IPv4 or IPv6 network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48`}},
		{"ip rule bare address", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    ip_rules:\n" +
			"      - {cidr: 192.0.2.7}\n      - {cidr: \"2001:db8::7\"}\n", []string{
			`t.yaml:6: apps[0].ip_rules[0].cidr: bad cidr "192.0.2.7": an address without a prefix length: write 192.0.2.7/32 for this address alone`,
			`t.yaml:7: apps[0].ip_rules[1].cidr: bad cidr "2001:db8::7": an address without a prefix length: write 2001:db8::7/128 for this address alone`}},
		{"ip rule twice", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    ip_rules:\n" +
			"      - {cidr: 10.0.0.0/8, description: VPC}\n      - {cidr: 10.0.0.0/8, description: again}\n      - {cidr: \"::ffff:10.0.0.0/104\"}\n" +
			"      - {cidr: \"2001:db8::/32\"}\n      - {cidr: \"2001:0db8::/32\"}\n", []string{
			`t.yaml:7: apps[0].ip_rules[1].cidr: "10.0.0.0/8" is the same network as apps[0].ip_rules[0] (10.0.0.0/8): list each network once`,
			`t.yaml:8: apps[0].ip_rules[2].cidr: "::ffff:10.0.0.0/104" is the same network as apps[0].ip_rules[0] (10.0.0.0/8): list each network once`,
			`t.yaml:10: apps[0].ip_rules[4].cidr: "2001:0db8::/32" is the same network as apps[0].ip_rules[3] (2001:db8::/32): list each network once`}},
		{"ip rule items", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    ip_rules:\n" +
			"      - 10.0.0.0/8\n      - {description: office}\n      - {cidr: \"\"}\n      - {cidr: 10.0.0.0/8, note: x}\n      - {cidr: 10.1.0.0/16, description: [x]}\n", []string{
			`t.yaml:6: apps[0].ip_rules[0]: want a mapping with keys cidr, description, such as {cidr: 203.0.113.0/24, description: Office}, got "10.0.0.0/8"`,
			`t.yaml:7: apps[0].ip_rules[1].cidr: missing: every rule needs cidr, a network such as 203.0.113.0/24`,
			`t.yaml:8: apps[0].ip_rules[2].cidr: missing value: every rule needs cidr, a network such as 203.0.113.0/24`,
			`t.yaml:9: apps[0].ip_rules[3]: unknown key "note": allowed keys are cidr, description`,
			`t.yaml:10: apps[0].ip_rules[4].description: want a string, got a list`}},
		{"ip rules a mapping", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    ip_rules: {cidr: 10.0.0.0/8}\n", []string{
			`t.yaml:5: apps[0].ip_rules: want a list, got a mapping`}},
		{"ip rule 61", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    ip_rules:\n" + rules(61), []string{
			`t.yaml:66: apps[0].ip_rules[60]: rule 61 is one too many: an app has at most 60 ip_rules; merge networks into wider CIDRs`}},

		// acme, without files: the paths named do not exist.
		{"acme empty", "listen: {http: \":0\"}\nacme: {}\n" + app1, []string{
			`t.yaml:2: acme.directory: missing: acme needs directory, the URL of the CA's ACME directory, such as https://acme-v02.api.letsencrypt.org/directory`,
			`t.yaml:2: acme.agree_tos: missing: ` + agreeTOSMsg,
			`t.yaml:2: acme.storage: missing: acme needs storage, the directory of the ACME account, certificates and keys, such as /var/lib/spacerouter/acme`}},
		{"acme values missing", "listen: {http: \":0\"}\nacme:\n  directory:\n  agree_tos:\n  storage: \"\"\n" + app1, []string{
			`t.yaml:3: acme.directory: missing value: acme needs directory, the URL of the CA's ACME directory, such as https://acme-v02.api.letsencrypt.org/directory`,
			`t.yaml:4: acme.agree_tos: missing value: ` + agreeTOSMsg,
			`t.yaml:5: acme.storage: missing value: acme needs storage, the directory of the ACME account, certificates and keys, such as /var/lib/spacerouter/acme`}},
		{"acme not agreed", "listen: {http: \":0\"}\nacme:\n  directory: http://127.0.0.1:14000/dir\n  email: mailto:ops@example.com\n" +
			"  agree_tos: false\n  storage: acme\n  renew_before: 0s\n  contact: x\n" + app1, []string{
			`t.yaml:3: acme.directory: bad directory "http://127.0.0.1:14000/dir": want an https:// URL: ACME runs over HTTPS only (RFC 8555 section 6.1); for a test CA such as Pebble, trust its root with acme.trusted_roots`,
			`t.yaml:4: acme.email: bad email "mailto:ops@example.com": write the address alone, "ops@example.com"`,
			`t.yaml:5: acme.agree_tos: false: ` + agreeTOSMsg,
			`t.yaml:7: acme.renew_before: bad duration "0s": want more than zero, such as 10ms or 5s`,
			`t.yaml:8: acme: unknown key "contact": allowed keys are directory, email, agree_tos, trusted_roots, storage, renew_before`}},
		{"acme bad values", "listen: {http: \":0\"}\nacme:\n  directory: acme.example.com/directory\n  email: Ops <ops@example.com>\n" +
			"  agree_tos: yes\n  storage: [a]\n  trusted_roots: none.pem\n  renew_before: 30d\n" + app1, []string{
			`t.yaml:3: acme.directory: bad directory "acme.example.com/directory": want the https:// URL of the CA's ACME directory, such as https://acme-v02.api.letsencrypt.org/directory`,
			`t.yaml:4: acme.email: bad email "Ops <ops@example.com>": want one address such as ops@example.com`,
			`t.yaml:5: acme.agree_tos: bad value "yes": want true or false`,
			`t.yaml:6: acme.storage: want a string, got a list`,
			`t.yaml:7: acme.trusted_roots: stat none.pem: no such file or directory`,
			`t.yaml:8: acme.renew_before: bad duration "30d": want a Go duration such as 10ms or 5s`}},
		{"acme not a mapping", "listen: {http: \":0\"}\nacme: letsencrypt\n" + app1, []string{
			`t.yaml:2: acme: want a mapping with keys directory, email, agree_tos, trusted_roots, storage, renew_before, got "letsencrypt"`}},

		// tls: auto and serve_from, without files
		{"tls auto without acme, wildcards", "listen: {https: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com, \"*.shop.example.com\", \"*.api.example.com\"]\n    tls: auto\n", []string{
			`t.yaml:5: apps[0].tls: auto needs the acme section, the CA to get certificates from: add acme at the top of the file, or list certificate files`,
			`t.yaml:5: apps[0].tls: auto cannot get a certificate for the wildcard domain "*.shop.example.com": a wildcard certificate needs the DNS-01 challenge, ` +
				`and the router answers TLS-ALPN-01 only; list the names under it one by one, or give this app certificate files`,
			`t.yaml:5: apps[0].tls: auto cannot get a certificate for the wildcard domain "*.api.example.com": a wildcard certificate needs the DNS-01 challenge, ` +
				`and the router answers TLS-ALPN-01 only; list the names under it one by one, or give this app certificate files`}},
		{"tls other strings", "listen: {https: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    tls: AUTO\n  - name: blog\n    domains: [blog.example.com]\n    tls: certs/blog.pem\n", []string{
			`t.yaml:5: apps[0].tls: bad tls "AUTO": want auto, for certificates over ACME, or a list of certificates such as [{cert: certs/shop.pem, key: certs/shop-key.pem}]`,
			`t.yaml:8: apps[1].tls: bad tls "certs/blog.pem": want auto, for certificates over ACME, or a list of certificates such as [{cert: certs/shop.pem, key: certs/shop-key.pem}]`}},
		{"serve_from bad time", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    tls:\n" +
			"      - {cert: a.pem, serve_from: 2027-01-01}\n      - {cert: a.pem, key: b.pem, serve_from: [x]}\n      - {cert: a.pem, key: b.pem, serve_from: \"2027-01-01 00:00:00Z\"}\n", []string{
			`t.yaml:6: apps[0].tls[0].serve_from: bad time "2027-01-01": want an RFC 3339 time such as 2027-03-01T00:00:00Z`,
			`t.yaml:6: apps[0].tls[0].key: missing: every certificate needs key, a PEM file with the private key`,
			`t.yaml:7: apps[0].tls[1].serve_from: want an RFC 3339 time such as 2027-03-01T00:00:00Z, got a list`,
			`t.yaml:7: apps[0].tls[1].cert: stat a.pem: no such file or directory`,
			`t.yaml:8: apps[0].tls[2].serve_from: bad time "2027-01-01 00:00:00Z": want an RFC 3339 time such as 2027-03-01T00:00:00Z`,
			`t.yaml:8: apps[0].tls[2].cert: stat a.pem: no such file or directory`}},

		// dyno_tls, without files
		{"dyno_tls bad mode", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dyno_tls: {mode: verify, trust: ca.pem}\n", []string{
			`t.yaml:5: apps[0].dyno_tls.mode: bad mode "verify": want off, require, verify-ca or verify-full`,
			`t.yaml:5: apps[0].dyno_tls.trust: want a list, got "ca.pem"`}},
		{"dyno_tls not a mapping", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dyno_tls: verify-full\n", []string{
			`t.yaml:5: apps[0].dyno_tls: want a mapping with keys mode, trust, server_name, got "verify-full"`}},
		{"verify-full at IP addresses", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dynos:\n" +
			"      - {name: web.1, address: \"10.0.1.5:5000\"}\n      - {name: web.2, address: \"[fd00::5]:5000\"}\n      - {name: web.3, address: \"dyno3.internal:5000\"}\n" +
			"      - {address: \"10.0.1.6:5000\"}\n      - {name: web.5, address: \"10.0.1.7:0\"}\n    dyno_tls:\n      mode: verify-full\n      trust: []\n", []string{
			`t.yaml:6: apps[0].dynos[0].address: dyno web.1 has an IP address (10.0.1.5), and dyno_tls mode verify-full checks the dyno's certificate against a host name: ` +
				`set dyno_tls.server_name to the name in the dynos' certificates, or use mode verify-ca`,
			`t.yaml:7: apps[0].dynos[1].address: dyno web.2 has an IP address (fd00::5), and dyno_tls mode verify-full checks the dyno's certificate against a host name: ` +
				`set dyno_tls.server_name to the name in the dynos' certificates, or use mode verify-ca`,
			`t.yaml:9: apps[0].dynos[3].name: missing: every dyno needs a name such as web.1`,
			`t.yaml:9: apps[0].dynos[3].address: dyno apps[0].dynos[3] has an IP address (10.0.1.6), and dyno_tls mode verify-full checks the dyno's certificate against a host name: ` +
				`set dyno_tls.server_name to the name in the dynos' certificates, or use mode verify-ca`,
			`t.yaml:10: apps[0].dynos[4].address: bad port "0" in "10.0.1.7:0": want a number from 1 to 65535`,
			`t.yaml:13: apps[0].dyno_tls.trust: empty: mode verify-full needs at least one PEM bundle`}},
		{"verify-ca without trust", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dyno_tls:\n      mode: verify-ca\n      server_name: 10.0.0.1\n", []string{
			`t.yaml:6: apps[0].dyno_tls.trust: missing: mode verify-ca needs the CAs that sign the dynos' certificates: add trust with PEM bundle paths`,
			`t.yaml:7: apps[0].dyno_tls.server_name: bad server_name "10.0.0.1": an IP address: want the host name in the dynos' certificates, such as web.shop.internal`}},
		{"dyno_tls trust entries", "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    dyno_tls:\n      mode: verify-full\n" +
			"      trust: [\"\", ca/dynos.pem, ./ca/dynos.pem, [x]]\n      server_name: web..internal\n      sni: x\n", []string{
			`t.yaml:7: apps[0].dyno_tls.trust: empty entry in the list: want a PEM bundle path`,
			`t.yaml:7: apps[0].dyno_tls.trust: stat ca/dynos.pem: no such file or directory`,
			`t.yaml:7: apps[0].dyno_tls.trust: "./ca/dynos.pem" is listed twice`,
			`t.yaml:7: apps[0].dyno_tls.trust: want a string, got a list`,
			`t.yaml:8: apps[0].dyno_tls.server_name: bad server_name "web..internal": empty label: want labels separated by single dots`,
			`t.yaml:9: apps[0].dyno_tls: unknown key "sni": allowed keys are mode, trust, server_name`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("t.yaml", []byte(tc.src))
			assert.Nil(t, c)
			assert.Equal(t, tc.want, problems(t, err), "config:\n%s", tc.src)
		})
	}
}

func TestParseSyntaxError(t *testing.T) {
	t.Parallel()
	_, err := Parse("t.yaml", []byte("listen: {http: \":0\"}\napps: [\n  - x: : :\n"))
	got := problems(t, err)
	require.Len(t, got, 1)
	assert.True(t, strings.HasPrefix(got[0], "t.yaml:"), got[0])
	assert.Contains(t, got[0], "bad YAML: ")
}

func TestParseSyntaxErrorWithoutLine(t *testing.T) {
	t.Parallel()
	_, err := Parse("t.yaml", []byte("listen: \x01\n"))
	got := problems(t, err)
	require.Len(t, got, 1)
	assert.True(t, strings.HasPrefix(got[0], "t.yaml: bad YAML: "), got[0])
}

func TestParseManyProblems(t *testing.T) {
	t.Parallel()
	src := `space: my-space
listen:
  http: 127.0.0.1
timeouts:
  connect: 5x
apps:
  - name: Shop
    domains: [Shop.example.com]
    features: [spaces-tls-legacy, x]
    dynos:
      - {name: web.1, address: "127.0.0.1:0", state: gone}
  - name: blog
    domains: []
limits: {header_count: -5}
`
	_, err := Parse("space.yaml", []byte(src))
	assert.Equal(t, []string{
		`space.yaml:3: listen.http: bad address "127.0.0.1": want host:port such as 127.0.0.1:8080`,
		`space.yaml:5: timeouts.connect: bad duration "5x": want a Go duration such as 10ms or 5s`,
		`space.yaml:7: apps[0].name: bad app name "Shop": want 3 to 30 characters of a-z, 0-9 and -, starting with a letter`,
		`space.yaml:8: apps[0].domains: domain "Shop.example.com" is not lower case: write "shop.example.com"`,
		`space.yaml:9: apps[0].features: feature "spaces-tls-legacy" was retired in April 2023: choose spaces-tls-salesforce or spaces-tls-modern`,
		`space.yaml:9: apps[0].features: unknown feature "x": known features are spaces-tls-salesforce, spaces-tls-modern, ` +
			`spaces-strict-tls, http-disable-http2, http-disable-keepalive-to-dyno, http-end-to-end-continue, spaces-extra-resolver`,
		`space.yaml:11: apps[0].dynos[0].address: bad port "0" in "127.0.0.1:0": want a number from 1 to 65535`,
		`space.yaml:11: apps[0].dynos[0].state: bad state "gone": want up, crashed or starting`,
		`space.yaml:13: apps[1].domains: missing: every app needs at least one domain, such as [shop.example.com]`,
		`space.yaml:14: limits.header_count: bad number "-5": want a whole number greater than zero, such as 1000`,
	}, problems(t, err))
}

func TestParseAliasBomb(t *testing.T) {
	t.Parallel()
	// Each level is ten aliases of the one before: 10^7 values in 200 bytes.
	src := "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i <= 7; i++ {
		prev := fmt.Sprintf("*l%d", i-1)
		src += fmt.Sprintf("l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(prev+", ", 10), ", "))
	}
	_, err := Parse("t.yaml", []byte(src))
	assert.Equal(t, []string{
		`t.yaml: aliases expand the file to more than 1000000 values: want fewer aliases`,
	}, problems(t, err))
}

func TestParseJSONProblems(t *testing.T) {
	t.Parallel()
	src := `{
  "listen": {"http": ":0"},
  "apps": [
    {"name": "shop", "domains": ["shop.example.com"], "featurs": []}
  ]
}`
	_, err := Parse("space.json", []byte(src))
	assert.Equal(t, []string{
		`space.json:4: apps[0]: unknown key "featurs": allowed keys are ` + appKeys,
	}, problems(t, err))
}

func TestCertProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCert(t, dir, "a.pem", "a-key.pem", "shop.example.com")
	writeCert(t, dir, "b.pem", "b-key.pem", "shop.example.com")
	writeFile(t, dir, "junk.pem", []byte("not a certificate\n"))
	path := filepath.Join(dir, "space.yaml")
	_, err := Parse(path, []byte(`listen: {https: ":0"}
apps:
  - name: shop
    domains: [shop.example.com]
    tls:
      - {cert: nope.pem, key: a-key.pem}
      - {cert: a.pem, key: b-key.pem}
      - {cert: junk.pem, key: a-key.pem}
      - {cert: a.pem, key: .}
`))
	got := problems(t, err)
	want := []string{
		path + `:6: apps[0].tls[0].cert: stat ` + filepath.Join(dir, "nope.pem") + `: no such file or directory`,
		path + `:7: apps[0].tls[1].cert: loading certificate and key: tls: private key does not match public key`,
		path + `:8: apps[0].tls[2].cert: loading certificate and key: tls: failed to find any PEM data in certificate input`,
		path + `:9: apps[0].tls[3].key: "` + dir + `" is not a regular file`,
	}
	// The messages after the key come from the os and crypto/tls packages;
	// this is the one place that compares their text.
	assert.Equal(t, want, got)
}

// rules returns n ip_rules items, one a line, of distinct networks.
func rules(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "      - {cidr: 10.%d.%d.0/24}\n", i/256, i%256)
	}
	return b.String()
}
