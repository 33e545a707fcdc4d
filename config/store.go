package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Store is where the apps and the space's settings live when several
// routers share them (key store, SPEC.md section 14).
type Store struct {
	// Etcd is the etcd cluster holding the keys. Required.
	Etcd Etcd
	// CacheFile is the file the router rewrites (atomically) after each
	// applied change and serves at a start without etcd; resolved against
	// the config file's directory. "" means none: a start without etcd
	// serves nothing until etcd answers.
	CacheFile string
	// RouterID names this router's status key routers/<id>. Default
	// "<host name>-<port of listen.http, else listen.https>".
	RouterID string
}

// Etcd is how the router reaches etcd (key store.etcd).
type Etcd struct {
	// Endpoints are http:// or https:// URLs of etcd members, at least one.
	Endpoints []string
	// Prefix is the key prefix of the space, ending in "/", such as
	// /spacerouter/my-space/. Required.
	Prefix string
	// DialTimeout bounds each connection attempt and each read at start;
	// default 5s.
	DialTimeout time.Duration
	// TLS is the client side of TLS to etcd; nil when not set. Required
	// for https:// endpoints only to trust a private CA or to present a
	// client certificate.
	TLS *EtcdTLS
	// Username is the etcd user; "" means no authentication by password.
	Username string
	// PasswordFile is the file whose first line is the user's password;
	// resolved against the config file's directory. Set exactly when
	// Username is.
	PasswordFile string
}

// EtcdTLS names the files of TLS to etcd, resolved against the config
// file's directory.
type EtcdTLS struct {
	// CA is a PEM bundle of the CAs that sign the etcd members'
	// certificates; "" means the system's roots.
	CA string
	// Cert and Key are the client certificate chain and its key, both
	// set or both "".
	Cert, Key string
}

// defaultDialTimeout is store.etcd.dial_timeout when omitted.
const defaultDialTimeout = 5 * time.Second

// routerID is the rule for store.router_id: one etcd key segment that a
// log line holds without quoting.
var routerID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// fileOnlyKeys are the top-level keys a file with store may have: what is
// local to one router process (SPEC.md section 14). The others live in
// etcd.
var fileOnlyKeys = []string{"space", "listen", "log", "admin", "store"}

// storeKeyHome says where a key of a file with store goes instead.
var storeKeyHome = map[string]string{
	"apps":      "each app is the etcd key apps/<app> and each dyno dynos/<app>/<dyno>",
	"timeouts":  "write timeouts in the etcd key space",
	"limits":    "write limits in the etcd key space",
	"buffering": "write buffering in the etcd key space",
	"acme":      "write acme in the etcd key space",
	"space_ca":  "write space_ca in the etcd key space",
}

// store decodes the store section (SPEC.md sections 2 and 14); nothing is
// the same as leaving it out.
func (d *decoder) store(key string, n *yaml.Node) *Store {
	if isNull(n) {
		return nil
	}
	s := &Store{}
	var etcd *yaml.Node
	seen, ok := d.fields(key, n, d.storeFields(s, &etcd))
	if !ok {
		return s
	}
	d.need(key, n, seen, "etcd", "store needs etcd, such as etcd: {endpoints: [http://127.0.0.1:2379], prefix: /spacerouter/my-space/}")
	if etcd != nil && !isNull(etcd) {
		d.etcd(join(key, "etcd"), etcd, &s.Etcd)
	}
	return s
}

// storeFields is the table of the keys of store; etcd is kept in *etcd.
func (d *decoder) storeFields(s *Store, etcd **yaml.Node) []field {
	return []field{
		{"etcd", func(_ string, v *yaml.Node) { *etcd = v }},
		{"cache_file", func(k string, v *yaml.Node) {
			if s.CacheFile = d.path(d.str(k, v)); s.CacheFile != "" {
				d.cacheFile(v, k, s.CacheFile)
			}
		}},
		{"router_id", func(k string, v *yaml.Node) {
			s.RouterID = d.str(k, v)
			if !routerID.MatchString(s.RouterID) {
				d.problem(v, k, "bad router id %q: want up to 100 characters of A-Z, a-z, 0-9, ., _ and -, such as router-1", s.RouterID)
			}
		}},
	}
}

// cacheFile checks store.cache_file: its directory exists, and what is at
// the path, if anything, is a regular file.
func (d *decoder) cacheFile(n *yaml.Node, key, path string) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		dir := filepath.Dir(path)
		if di, err := os.Stat(dir); err != nil || !di.IsDir() {
			d.problem(n, key, "directory %q of the cache file does not exist: create it, or choose a file in an existing directory", dir)
		}
	case err != nil:
		d.problem(n, key, "%v", err)
	case !fi.Mode().IsRegular():
		d.problem(n, key, "%q is not a regular file: want the path of the file the router rewrites after each change", path)
	}
}

// etcd decodes store.etcd.
func (d *decoder) etcd(key string, n *yaml.Node, e *Etcd) {
	e.DialTimeout = defaultDialTimeout
	var tlsNode *yaml.Node
	seen, ok := d.fields(key, n, d.etcdFields(e, &tlsNode))
	if !ok {
		return
	}
	d.need(key, n, seen, "endpoints", "etcd needs endpoints, the URLs of its members, such as [http://127.0.0.1:2379]")
	d.need(key, n, seen, "prefix", "etcd needs prefix, the key prefix of the space, such as /spacerouter/my-space/")
	if tlsNode != nil && !isNull(tlsNode) {
		e.TLS = d.etcdTLS(join(key, "tls"), tlsNode)
	}
	if e.TLS != nil {
		for _, ep := range e.Endpoints {
			if strings.HasPrefix(ep, "http://") {
				d.problem(seen["endpoints"].v, join(key, "endpoints"),
					"endpoint %q is plain HTTP while tls is set: write https://, or drop tls", ep)
			}
		}
	}
	_, user := seen["username"]
	_, pass := seen["password_file"]
	switch {
	case e.Username != "" && e.PasswordFile == "" && !pass:
		d.problem(n, join(key, "password_file"), "missing: username %q needs password_file, the file with its password", e.Username)
	case e.PasswordFile != "" && e.Username == "" && !user:
		d.problem(n, join(key, "username"), "missing: password_file needs username, the etcd user it is the password of")
	}
}

// etcdFields is the table of the keys of store.etcd; tls is kept in *t.
func (d *decoder) etcdFields(e *Etcd, t **yaml.Node) []field {
	return []field{
		{"endpoints", func(k string, v *yaml.Node) {
			e.Endpoints = d.strList(k, v, "endpoint")
			for _, ep := range e.Endpoints {
				if msg := endpointProblem(ep); msg != "" {
					d.problem(v, k, "%s", msg)
				}
			}
			if len(e.Endpoints) == 0 && deref(v).Kind == yaml.SequenceNode {
				d.problem(v, k, "empty: want at least one URL, such as [http://127.0.0.1:2379]")
			}
		}},
		{"prefix", func(k string, v *yaml.Node) {
			e.Prefix = d.str(k, v)
			if msg := prefixProblem(e.Prefix); e.Prefix != "" && msg != "" {
				d.problem(v, k, "%s", msg)
			}
		}},
		{"dial_timeout", func(k string, v *yaml.Node) { d.duration(k, v, &e.DialTimeout) }},
		{"tls", func(_ string, v *yaml.Node) { *t = v }},
		{"username", func(k string, v *yaml.Node) {
			if e.Username = d.str(k, v); e.Username == "" {
				d.problem(v, k, "empty: want the etcd user name, or leave username out")
			}
		}},
		{"password_file", func(k string, v *yaml.Node) {
			if e.PasswordFile = d.path(d.str(k, v)); e.PasswordFile != "" {
				d.passwordFile(v, k, e.PasswordFile)
			} else {
				d.problem(v, k, "empty: want the path of the file with the etcd user's password")
			}
		}},
	}
}

// endpointProblem checks one etcd endpoint: an http:// or https:// URL
// with a host and a port, and nothing else.
func endpointProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("bad endpoint %q: want an http:// or https:// URL with host and port, such as http://127.0.0.1:2379", s)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return fmt.Sprintf("bad endpoint %q: want a port, such as %s://%s:2379", s, u.Scheme, u.Hostname())
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Sprintf("bad endpoint %q: want scheme, host and port only, such as %s://%s", s, u.Scheme, u.Host)
	}
	return ""
}

// prefixProblem checks store.etcd.prefix: it ends in "/", so that the
// keys of two spaces never share a prefix (/s/a/ and /s/ab/).
func prefixProblem(s string) string {
	if !strings.HasSuffix(s, "/") {
		return fmt.Sprintf("bad prefix %q: want it to end in /, write %q", s, s+"/")
	}
	return ""
}

// maxPasswordBytes bounds store.etcd.password_file.
const maxPasswordBytes = 4096

// passwordFile checks the password file: a readable regular file with a
// non-empty first line. The password is not kept: package store reads it
// when it connects.
func (d *decoder) passwordFile(n *yaml.Node, key, path string) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		d.problem(n, key, "%v", err)
		return
	case !fi.Mode().IsRegular() || fi.Size() > maxPasswordBytes:
		d.problem(n, key, "%q is not a regular file of at most %d bytes: want the file with the etcd user's password", path, maxPasswordBytes)
		return
	}
	if _, err := ReadPassword(path); err != nil {
		d.problem(n, key, "%v", err)
	}
}

// ReadPassword returns the first line of the password file at path,
// without its line end; an empty first line is an error.
func ReadPassword(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("%q has an empty first line: want the password on the first line", path)
	}
	return line, nil
}

// etcdTLS decodes store.etcd.tls, loading its files to prove them usable.
func (d *decoder) etcdTLS(key string, n *yaml.Node) *EtcdTLS {
	t := &EtcdTLS{}
	seen, ok := d.fields(key, n, d.etcdTLSFields(t))
	if !ok {
		return t
	}
	switch {
	case t.Cert != "" && t.Key == "":
		d.problem(pick(seen["key"].v, n), join(key, "key"), "missing: cert needs key, the PEM file with the client certificate's private key")
	case t.Key != "" && t.Cert == "":
		d.problem(pick(seen["cert"].v, n), join(key, "cert"), "missing: key needs cert, the PEM file with the client certificate chain")
	case t.Cert != "":
		certAt := seen["cert"].v
		if d.regularFile(certAt, join(key, "cert"), t.Cert) && d.regularFile(seen["key"].v, join(key, "key"), t.Key) {
			if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
				d.problem(certAt, join(key, "cert"), "loading certificate and key: %v", err)
			}
		}
	}
	return t
}

// etcdTLSFields is the table of the keys of store.etcd.tls.
func (d *decoder) etcdTLSFields(t *EtcdTLS) []field {
	return []field{
		{"ca", func(k string, v *yaml.Node) {
			if t.CA = d.path(d.str(k, v)); t.CA != "" {
				d.anchorBundle(v, k, t.CA, "a PEM bundle of the CA certificates that sign the etcd members' certificates",
					"an etcd certificate that chains only to it fails verification")
			}
		}},
		{"cert", func(k string, v *yaml.Node) { t.Cert = d.path(d.str(k, v)) }},
		{"key", func(k string, v *yaml.Node) { t.Key = d.path(d.str(k, v)) }},
	}
}

// DefaultRouterID is store.router_id when omitted: the host name and the
// port of listen.http, else of listen.https ("web-1-8080").
func DefaultRouterID(host string, l Listen) string {
	addr := l.HTTP
	if addr == "" {
		addr = l.HTTPS
	}
	_, port, _ := net.SplitHostPort(addr)
	id := host + "-" + port
	if !routerID.MatchString(id) {
		// A host name with characters a key should not hold.
		id = "router-" + port
	}
	return id
}

// storeRoot checks the top level of a file with store: only the keys
// local to one router, and store's defaults.
func (d *decoder) storeRoot(seen map[string]pair, c *Config) {
	for name, p := range seen {
		if home, ok := storeKeyHome[name]; ok {
			d.problem(p.k, name, "not in a file with store (SPEC.md section 14): %s; the file holds only %s",
				home, strings.Join(fileOnlyKeys, ", "))
		}
	}
	if c.Store.RouterID == "" {
		host, _ := os.Hostname()
		c.Store.RouterID = DefaultRouterID(host, c.Listen)
	}
}
