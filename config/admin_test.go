package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// adminConfig is a config with listen.admin at adminAddr, the admin
// section ad (indented two spaces under admin:) and two apps, shop and
// blog.
func adminConfig(adminAddr, ad string) string {
	return "listen: {http: \":0\", admin: \"" + adminAddr + "\"}\nadmin:\n" + ad +
		"apps:\n  - {name: shop, domains: [shop.example.com]}\n  - {name: blog, domains: [blog.example.com]}\n"
}

// adminAuth is an admin.auth section against a provider on loopback, with
// the client secret in secret.txt.
const adminAuth = "  auth:\n    issuer: http://127.0.0.1:5556/dex\n    client_id: spacerouter-admin\n" +
	"    client_secret_file: secret.txt\n    redirect_url: http://127.0.0.1:9090/auth/callback\n    roles:\n" +
	"      - {group: platform-admins, role: admin}\n      - {group: shop-team, role: owner, apps: [shop]}\n" +
	"      - {group: contractors, role: collaborator, apps: [shop, blog]}\n"

func TestAdmin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "secret.txt", []byte("s3cret\n"))
	writeCert(t, dir, "admin.pem", "admin-key.pem", "admin.example.com")
	path := filepath.Join(dir, "space.yaml")

	c, err := Parse(path, []byte(adminConfig("127.0.0.1:9090", adminAuth)))
	require.NoError(t, err)
	assert.Equal(t, &Admin{Auth: &AdminAuth{
		Issuer:           "http://127.0.0.1:5556/dex",
		ClientID:         "spacerouter-admin",
		ClientSecretFile: filepath.Join(dir, "secret.txt"),
		RedirectURL:      "http://127.0.0.1:9090/auth/callback",
		GroupsClaim:      "groups",
		AuthzTTL:         5 * time.Minute,
		Roles: []RoleMapping{
			{Group: "platform-admins", Role: RoleAdmin, Apps: []string{}},
			{Group: "shop-team", Role: RoleOwner, Apps: []string{"shop"}},
			{Group: "contractors", Role: RoleCollaborator, Apps: []string{"shop", "blog"}},
		},
	}}, c.Admin, "defaults: groups_claim groups, authz_ttl 5m, no tls on loopback")
	assert.Empty(t, c.Warnings())

	src := adminConfig("0.0.0.0:9443", "  tls: {cert: admin.pem, key: admin-key.pem}\n"+
		"  auth:\n    issuer: https://idp.example.com/\n    client_id: x\n    redirect_url: https://admin.example.com/auth/callback\n"+
		"    groups_claim: roles\n    authz_ttl: 90s\n    roles: [{group: g, role: collaborator, apps: [blog]}]\n")
	c, err = Parse(path, []byte(src))
	require.NoError(t, err, "config:\n%s", src)
	assert.Equal(t, &Cert{Cert: filepath.Join(dir, "admin.pem"), Key: filepath.Join(dir, "admin-key.pem")}, c.Admin.TLS)
	assert.Equal(t, "roles", c.Admin.Auth.GroupsClaim)
	assert.Equal(t, 90*time.Second, c.Admin.Auth.AuthzTTL)
	assert.Empty(t, c.Admin.Auth.ClientSecretFile, "a public client")

	for _, host := range []string{"localhost:9090", "[::1]:9090", "127.0.0.2:9090"} {
		_, err = Parse(path, []byte(adminConfig(host, adminAuth)))
		assert.NoError(t, err, "listen.admin %s is loopback: no tls needed", host)
	}
	c, err = Parse(path, []byte(adminConfig("0.0.0.0:9090", "  tls: {cert: admin.pem, key: admin-key.pem}\n")))
	require.NoError(t, err, "tls without auth: /metrics over TLS")
	assert.Nil(t, c.Admin.Auth)
	c, err = Parse(path, []byte(adminConfig("0.0.0.0:9090", "")))
	require.NoError(t, err)
	assert.Nil(t, c.Admin, "admin: with nothing after it")
}

// TestAdminProblems: each case has the problems of one admin section,
// in a directory with secret.txt, empty.txt and admin.pem/admin-key.pem;
// DIR stands for the directory.
func TestAdminProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "secret.txt", []byte("s3cret\n"))
	writeFile(t, dir, "empty.txt", []byte("\n"))
	writeCert(t, dir, "admin.pem", "admin-key.pem", "admin.example.com")
	auth := func(lines ...string) string { return "  auth:\n    " + strings.Join(lines, "\n    ") + "\n" }
	good := []string{"issuer: https://idp.example.com/", "client_id: c", "redirect_url: https://admin.example.com/auth/callback"}
	withRoles := func(roles string, more ...string) string {
		return auth(append(append(append([]string{}, good...), more...), "roles: "+roles)...)
	}
	cases := []struct {
		name, addr, ad string
		want           []string
	}{
		{"auth empty", "127.0.0.1:9090", "  auth: {}\n", []string{
			`DIR/space.yaml:3: admin.auth.issuer: missing: admin.auth needs issuer, the OpenID Connect provider's issuer URL, such as https://idp.example.com/`,
			`DIR/space.yaml:3: admin.auth.client_id: missing: admin.auth needs client_id, the client the provider registered for the dashboard, such as spacerouter-admin`,
			`DIR/space.yaml:3: admin.auth.redirect_url: missing: admin.auth needs redirect_url, the dashboard's /auth/callback URL as registered with the provider, such as https://admin.example.com/auth/callback`,
			`DIR/space.yaml:3: admin.auth.roles: missing: admin.auth needs roles, which give the provider's groups a role: without them nobody may use the API or the dashboard`}},
		{"bad values", "127.0.0.1:9090", auth("issuer: http://idp.example.com/", "client_id: c",
			"client_secret_file: missing.txt", "redirect_url: https://admin.example.com/callback", "groups_claim: \"\"",
			"authz_ttl: 10m", "roles: []"), []string{
			`DIR/space.yaml:4: admin.auth.issuer: bad issuer "http://idp.example.com/": want an https:// URL; http:// is allowed only on a loopback address (127.0.0.1, ::1, localhost), for tests`,
			`DIR/space.yaml:6: admin.auth.client_secret_file: stat DIR/missing.txt: no such file or directory`,
			`DIR/space.yaml:7: admin.auth.redirect_url: bad redirect_url "https://admin.example.com/callback": want the path /auth/callback and no query, where the admin listener takes the provider's answer, such as https://admin.example.com/auth/callback`,
			`DIR/space.yaml:8: admin.auth.groups_claim: missing value: want the name of the ID token claim that lists the person's groups, such as groups`,
			`DIR/space.yaml:9: admin.auth.authz_ttl: bad duration "10m": want at most 5m: a person removed from a group must lose access within 5 minutes`,
			`DIR/space.yaml:10: admin.auth.roles: empty: nobody may use the API or the dashboard; give at least one group a role, such as {group: platform-admins, role: admin}`}},
		{"bad URLs", "127.0.0.1:9090", auth("issuer: idp.example.com", "client_id: c", "client_secret_file: empty.txt",
			"redirect_url: http://admin.example.com/auth/callback", "authz_ttl: 0s", "roles: [{group: g, role: admin}]"), []string{
			`DIR/space.yaml:4: admin.auth.issuer: bad issuer "idp.example.com": want the provider's https:// issuer URL, such as https://idp.example.com/`,
			`DIR/space.yaml:6: admin.auth.client_secret_file: "DIR/empty.txt" is empty: want the client secret the provider issued`,
			`DIR/space.yaml:7: admin.auth.redirect_url: bad redirect_url "http://admin.example.com/auth/callback": want an https:// URL; http:// is allowed only on a loopback address (127.0.0.1, ::1, localhost), for tests`,
			`DIR/space.yaml:8: admin.auth.authz_ttl: bad duration "0s": want more than zero, such as 10ms or 5s`}},
		{"issuer query, secret a directory", "127.0.0.1:9090", auth("issuer: https://idp.example.com/?tenant=1", "client_id: c",
			"client_secret_file: .", "redirect_url: ftp://admin.example.com/auth/callback", "roles: [{group: g, role: admin}]"), []string{
			`DIR/space.yaml:4: admin.auth.issuer: bad issuer "https://idp.example.com/?tenant=1": want a URL without user, query or fragment, exactly as the provider's discovery document writes it`,
			`DIR/space.yaml:6: admin.auth.client_secret_file: "DIR" is not a regular file`,
			`DIR/space.yaml:7: admin.auth.redirect_url: bad redirect_url "ftp://admin.example.com/auth/callback": want the dashboard's callback URL as registered with the provider, such as https://admin.example.com/auth/callback`}},
		{"roles", "127.0.0.1:9090", withRoles("\n" +
			"      - {group: a, role: owner}\n" +
			"      - {group: b, role: collaborator, apps: []}\n" +
			"      - {group: c, role: admin, apps: [shop]}\n" +
			"      - {group: d, role: superuser}\n" +
			"      - {role: owner, apps: [shop, shop, docs, \"\"]}\n" +
			"      - {group: e, role: owner, apps: [blog], app: shop}\n"), []string{
			`DIR/space.yaml:8: admin.auth.roles[0].apps: missing: role owner needs apps, the apps the group's members may see and change; an owner or collaborator of every app is role admin`,
			`DIR/space.yaml:9: admin.auth.roles[1].apps: missing: role collaborator needs apps, the apps the group's members may see; an owner or collaborator of every app is role admin`,
			`DIR/space.yaml:10: admin.auth.roles[2].apps: role admin has every app: remove apps, or choose owner or collaborator for these apps`,
			`DIR/space.yaml:11: admin.auth.roles[3].role: bad role "superuser": want admin, owner or collaborator`,
			`DIR/space.yaml:12: admin.auth.roles[4].group: missing: every role needs group, the provider's group whose members get it`,
			`DIR/space.yaml:12: admin.auth.roles[4].apps: app "shop" is listed twice`,
			`DIR/space.yaml:12: admin.auth.roles[4].apps: empty app name in the list`,
			`DIR/space.yaml:12: admin.auth.roles[4].apps: unknown app "docs": want the name of an app of this file`,
			`DIR/space.yaml:13: admin.auth.roles[5]: unknown key "app": allowed keys are group, role, apps`}},
		{"no tls off loopback", "0.0.0.0:9090", withRoles("[{group: g, role: admin}]"), []string{
			`DIR/space.yaml:4: admin.tls: missing: listen.admin "0.0.0.0:9090" is not a loopback address, so admin.auth needs tls: session cookies and ID tokens must not cross the network in clear text; add tls: {cert: admin.pem, key: admin-key.pem}, or listen on 127.0.0.1`}},
		{"tls broken", "0.0.0.0:9090", "  tls: {cert: admin.pem}\n" + withRoles("[{group: g, role: admin}]"), []string{
			`DIR/space.yaml:3: admin.tls.key: missing: every certificate needs key, a PEM file with the private key`}},
		{"tls serve_from", "0.0.0.0:9090", "  tls: {cert: admin.pem, key: admin-key.pem, serve_from: 2027-01-01T00:00:00Z}\n", []string{
			`DIR/space.yaml:3: admin.tls: unknown key "serve_from": allowed keys are cert, key`}},
		{"unknown key", "127.0.0.1:9090", "  auht: {}\n", []string{
			`DIR/space.yaml:3: admin: unknown key "auht": allowed keys are tls, auth`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := adminConfig(tc.addr, tc.ad)
			_, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "DIR", dir)
			}
			assert.Equal(t, want, problems(t, err), "config:\n%s", src)
		})
	}
}

func TestAdminNeedsListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := "listen: {http: \":0\"}\nadmin:\n" + adminAuth + app1
	src = strings.Replace(src, "client_secret_file: secret.txt\n    ", "", 1)
	_, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
	assert.Equal(t, []string{
		filepath.Join(dir, "space.yaml") + `:4: admin.auth: the API and the dashboard are served on listen.admin, and the file has none: set listen.admin, such as admin: 127.0.0.1:9090`,
		filepath.Join(dir, "space.yaml") + `:10: admin.auth.roles[2].apps: unknown app "blog": want the name of an app of this file`,
	}, problems(t, err), "config:\n%s", src)
}

// TestAdminSecretUnreadable: a client secret file the router's user
// cannot read is a problem at load, not a failed sign-in later.
func TestAdminSecretUnreadable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	dir := t.TempDir()
	p := writeFile(t, dir, "secret.txt", []byte("s3cret\n"))
	require.NoError(t, os.Chmod(p, 0))
	_, err := Parse(filepath.Join(dir, "space.yaml"), []byte(adminConfig("127.0.0.1:9090", adminAuth)))
	assert.Equal(t, []string{filepath.Join(dir, "space.yaml") + `:7: admin.auth.client_secret_file: open ` + p + `: permission denied`},
		problems(t, err))
}
