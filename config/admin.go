package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxAuthzTTL is the longest admin.auth.authz_ttl, and its default: a
// person removed from a group loses access within it (SPEC.md section 13).
const MaxAuthzTTL = 5 * time.Minute

// DefaultGroupsClaim is admin.auth.groups_claim when omitted.
const DefaultGroupsClaim = "groups"

// maxSecretBytes bounds admin.auth.client_secret_file; secrets are tens of
// bytes.
const maxSecretBytes = 64 << 10

// roles are the values of admin.auth.roles[].role, from most to least
// power.
var roles = []string{RoleAdmin, RoleOwner, RoleCollaborator}

// adminNodes keeps where the admin section and its parts are, for the
// checks made once the whole file is read (listen.admin and the app names
// may come after admin in the file).
type adminNodes struct {
	admin, auth *yaml.Node
	roleApps    []roleApp
}

// roleApp is one app named by a role, where the file names it.
type roleApp struct {
	key  string // admin.auth.roles[0].apps
	n    *yaml.Node
	name string
}

// admin decodes the admin section (SPEC.md section 13); nothing is the
// same as leaving it out. What needs listen.admin and the apps is checked
// by checkAdmin once the whole file is read.
func (d *decoder) admin(key string, n *yaml.Node, nodes *adminNodes) *Admin {
	if isNull(n) {
		return nil
	}
	nodes.admin = n
	a := &Admin{}
	d.fields(key, n, d.adminFields(a, nodes))
	return a
}

// adminFields is the table of the keys of admin.
func (d *decoder) adminFields(a *Admin, nodes *adminNodes) []field {
	return []field{
		{"tls", func(k string, v *yaml.Node) { a.TLS = d.adminTLS(k, v) }},
		{"auth", func(k string, v *yaml.Node) {
			if !isNull(v) {
				nodes.auth = v
				a.Auth = d.adminAuth(k, v, nodes)
			}
		}},
	}
}

// adminTLS decodes admin.tls, the admin listener's certificate and key,
// loaded like an app's. The result is not nil for a key that is there,
// even a broken one, so that admin.auth is not also told it lacks tls.
func (d *decoder) adminTLS(key string, n *yaml.Node) *Cert {
	if isNull(n) {
		return nil
	}
	c := &Cert{}
	seen, ok := d.fields(key, n, d.adminCertFields(c))
	if ok {
		d.loadCert(key, n, seen, *c, nil)
	}
	return c
}

// adminCertFields is the table of the keys of admin.tls: a chain and its
// key, without serve_from (a restart is the admin listener's rotation).
func (d *decoder) adminCertFields(c *Cert) []field {
	return []field{
		{"cert", func(k string, v *yaml.Node) { c.Cert = d.path(d.str(k, v)) }},
		{"key", func(k string, v *yaml.Node) { c.Key = d.path(d.str(k, v)) }},
	}
}

// adminAuth decodes admin.auth, the OpenID Connect provider and the role
// mapping.
func (d *decoder) adminAuth(key string, n *yaml.Node, nodes *adminNodes) *AdminAuth {
	a := &AdminAuth{GroupsClaim: DefaultGroupsClaim, AuthzTTL: MaxAuthzTTL, Roles: []RoleMapping{}}
	seen, ok := d.fields(key, n, d.adminAuthFields(a, nodes))
	if !ok {
		return a
	}
	d.need(key, n, seen, "issuer", "admin.auth needs issuer, the OpenID Connect provider's issuer URL, such as https://idp.example.com/")
	d.need(key, n, seen, "client_id", "admin.auth needs client_id, the client the provider registered for the dashboard, such as spacerouter-admin")
	d.need(key, n, seen, "redirect_url", "admin.auth needs redirect_url, the dashboard's /auth/callback URL as registered with the provider, "+
		"such as https://admin.example.com/auth/callback")
	d.need(key, n, seen, "roles", "admin.auth needs roles, which give the provider's groups a role: "+
		"without them nobody may use the API or the dashboard")
	return a
}

// adminAuthFields is the table of the keys of admin.auth.
func (d *decoder) adminAuthFields(a *AdminAuth, nodes *adminNodes) []field {
	return []field{
		{"issuer", func(k string, v *yaml.Node) {
			a.Issuer = d.str(k, v)
			if msg := issuerProblem(a.Issuer); a.Issuer != "" && msg != "" {
				d.problem(v, k, "%s", msg)
			}
		}},
		{"client_id", func(k string, v *yaml.Node) { a.ClientID = d.str(k, v) }},
		{"client_secret_file", func(k string, v *yaml.Node) {
			if a.ClientSecretFile = d.path(d.str(k, v)); a.ClientSecretFile != "" {
				d.secretFile(v, k, a.ClientSecretFile)
			} else if !isNull(v) {
				d.problem(v, k, "empty: want the path of a file holding the client secret, or leave the key out for a public client")
			}
		}},
		{"redirect_url", func(k string, v *yaml.Node) {
			a.RedirectURL = d.str(k, v)
			if msg := redirectProblem(a.RedirectURL); a.RedirectURL != "" && msg != "" {
				d.problem(v, k, "%s", msg)
			}
		}},
		{"groups_claim", func(k string, v *yaml.Node) {
			if a.GroupsClaim = d.str(k, v); a.GroupsClaim == "" {
				d.problem(v, k, "missing value: want the name of the ID token claim that lists the person's groups, such as groups")
				a.GroupsClaim = DefaultGroupsClaim
			}
		}},
		{"authz_ttl", func(k string, v *yaml.Node) {
			d.duration(k, v, &a.AuthzTTL)
			if a.AuthzTTL > MaxAuthzTTL {
				d.problem(v, k, "bad duration %q: want at most 5m: a person removed from a group must lose access within 5 minutes", deref(v).Value)
				a.AuthzTTL = MaxAuthzTTL
			}
		}},
		{"roles", func(k string, v *yaml.Node) { a.Roles = d.roles(k, v, nodes) }},
	}
}

// secretFile checks admin.auth.client_secret_file: a regular file the
// router can read, not empty. The secret itself is not kept in the
// Config: package admin reads it when it starts.
func (d *decoder) secretFile(n *yaml.Node, key, path string) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		d.problem(n, key, "%v", err)
		return
	case !fi.Mode().IsRegular():
		d.problem(n, key, "%q is not a regular file", path)
		return
	case fi.Size() > maxSecretBytes:
		d.problem(n, key, "%q has %d bytes: want a file of at most %d holding the client secret", path, fi.Size(), maxSecretBytes)
		return
	}
	data, err := os.ReadFile(path)
	switch {
	case err != nil:
		d.problem(n, key, "%v", err)
	case strings.TrimSpace(string(data)) == "":
		d.problem(n, key, "%q is empty: want the client secret the provider issued", path)
	}
}

// roles decodes admin.auth.roles: at least one mapping of a group to a
// role; owner and collaborator name their apps, admin none.
func (d *decoder) roles(key string, n *yaml.Node, nodes *adminNodes) []RoleMapping {
	out := []RoleMapping{}
	if isEmptyList(n) {
		d.problem(n, key, "empty: nobody may use the API or the dashboard; give at least one group a role, such as {group: platform-admins, role: admin}")
		return out
	}
	d.list(key, n, func(k string, item *yaml.Node) {
		var r RoleMapping
		var apps *yaml.Node
		seen, ok := d.fields(k, item, d.roleFields(&r, &apps))
		if !ok {
			return
		}
		d.need(k, item, seen, "group", "every role needs group, the provider's group whose members get it")
		d.need(k, item, seen, "role", "every role needs role: admin, owner or collaborator")
		d.roleApps(k, item, apps, &r, nodes)
		out = append(out, r)
	})
	return out
}

// roleFields is the table of the keys of one role; apps is only kept in
// *apps, to be checked against the role.
func (d *decoder) roleFields(r *RoleMapping, apps **yaml.Node) []field {
	return []field{
		{"group", func(k string, v *yaml.Node) { r.Group = d.str(k, v) }},
		{"role", func(k string, v *yaml.Node) {
			if r.Role = d.str(k, v); r.Role != "" {
				d.oneOf(v, k, "role", r.Role, roles)
			}
		}},
		{"apps", func(_ string, v *yaml.Node) { *apps = v }},
	}
}

// roleApps decodes the apps of role r: required for owner and
// collaborator, refused for admin (it has every app), each listed once.
// Whether each names an app of the file is checked by checkAdmin.
func (d *decoder) roleApps(key string, item, n *yaml.Node, r *RoleMapping, nodes *adminNodes) {
	k := join(key, "apps")
	r.Apps = []string{}
	if n != nil {
		d.list(k, n, func(_ string, a *yaml.Node) {
			name := d.str(k, a)
			switch {
			case deref(a).Kind != yaml.ScalarNode:
			case name == "":
				d.problem(a, k, "empty app name in the list")
			case slices.Contains(r.Apps, name):
				d.problem(a, k, "app %q is listed twice", name)
			default:
				r.Apps = append(r.Apps, name)
				nodes.roleApps = append(nodes.roleApps, roleApp{key: k, n: a, name: name})
			}
		})
	}
	switch {
	case (r.Role == RoleOwner || r.Role == RoleCollaborator) && (n == nil || isNull(n) || isEmptyList(n)):
		d.problem(pick(n, item), k, "missing: role %s needs apps, the apps the group's members may %s; "+
			"an owner or collaborator of every app is role admin", r.Role, roleVerb(r.Role))
	case r.Role == RoleAdmin && len(r.Apps) > 0:
		d.problem(n, k, "role admin has every app: remove apps, or choose owner or collaborator for these apps")
	}
}

// roleVerb says what a role may do with its apps, for messages.
func roleVerb(role string) string {
	if role == RoleOwner {
		return "see and change"
	}
	return "see"
}

// checkAdmin makes the checks of admin that need the rest of the file:
// admin.auth needs listen.admin, and admin.tls unless listen.admin is a
// loopback address; every app a role names is an app of the file.
func (d *decoder) checkAdmin(c *Config, nodes *adminNodes) {
	if c.Admin == nil || c.Admin.Auth == nil {
		return
	}
	switch {
	case c.Listen.Admin == "":
		d.problem(nodes.auth, "admin.auth", "the API and the dashboard are served on listen.admin, and the file has none: "+
			"set listen.admin, such as admin: 127.0.0.1:9090")
	case c.Admin.TLS == nil && !loopbackAddr(c.Listen.Admin):
		d.problem(nodes.auth, "admin.tls", "missing: listen.admin %q is not a loopback address, so admin.auth needs tls: "+
			"session cookies and ID tokens must not cross the network in clear text; add tls: {cert: admin.pem, key: admin-key.pem}, "+
			"or listen on 127.0.0.1", c.Listen.Admin)
	}
	for _, ra := range nodes.roleApps {
		if c.App(ra.name) == nil {
			d.problem(ra.n, ra.key, "unknown app %q: want the name of an app of this file", ra.name)
		}
	}
}

// loopbackAddr reports whether the host of the host:port addr is a
// loopback address (127.0.0.0/8, ::1) or localhost; an empty host is every
// interface.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(host)
}

// loopbackHost reports whether host is a loopback IP address or localhost.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// issuerProblem checks admin.auth.issuer: an absolute https:// URL without
// query or fragment (OpenID Connect Discovery 1.0 section 2); http:// only
// on a loopback host, for tests against a provider on this machine. It
// returns "" when s is good.
func issuerProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Hostname() == "" || u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("bad issuer %q: want the provider's https:// issuer URL, such as https://idp.example.com/", s)
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return fmt.Sprintf("bad issuer %q: want an https:// URL; http:// is allowed only on a loopback address "+
			"(127.0.0.1, ::1, localhost), for tests", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Sprintf("bad issuer %q: want a URL without user, query or fragment, exactly as the provider's discovery document writes it", s)
	}
	return ""
}

// callbackPath is where the admin listener takes the provider's answer.
const callbackPath = "/auth/callback"

// redirectProblem checks admin.auth.redirect_url: the absolute URL of the
// admin listener's /auth/callback, https:// unless on a loopback host. It
// returns "" when s is good.
func redirectProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Hostname() == "" || u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("bad redirect_url %q: want the dashboard's callback URL as registered with the provider, "+
			"such as https://admin.example.com/auth/callback", s)
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return fmt.Sprintf("bad redirect_url %q: want an https:// URL; http:// is allowed only on a loopback address "+
			"(127.0.0.1, ::1, localhost), for tests", s)
	case u.Path != callbackPath || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Sprintf("bad redirect_url %q: want the path %s and no query, where the admin listener takes the provider's answer, "+
			"such as https://admin.example.com/auth/callback", s, callbackPath)
	}
	return ""
}
