package admin

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBearer: an API call counts only with an ID token of the issuer,
// for client_id, unexpired and issued less than authz_ttl ago (SPEC.md
// section 13).
func TestBearer(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	now := e.clock.Now()
	with := func(mod func(jwt.MapClaims)) string {
		c := p.claims(now, "alice", "ops")
		mod(c)
		return p.sign(t, c)
	}
	stranger := strangerKey(t)
	foreign, err := stranger.SignJWT(p.claims(now, "alice", "ops"))
	require.NoError(t, err)

	cases := []struct {
		name   string
		header string // Authorization; "" sends none
		status int
		desc   string // in WWW-Authenticate or the body
	}{
		{"no token", "", 401, ""},
		{"not bearer", "Basic YWxpY2U6cHc=", 401, "want Authorization: Bearer"},
		{"garbage", "Bearer not.a.jwt", 401, "not valid"},
		{"valid", "Bearer " + e.token("alice", "ops"), 200, ""},
		{"expired", "Bearer " + with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), 401, "expired"},
		{"wrong issuer", "Bearer " + with(func(c jwt.MapClaims) { c["iss"] = "http://127.0.0.1:1/oidc" }), 401, "not valid"},
		{"wrong audience", "Bearer " + with(func(c jwt.MapClaims) { c["aud"] = []string{"someone-else"} }), 401, "not valid"},
		{"issued before authz_ttl", "Bearer " + with(func(c jwt.MapClaims) { c["iat"] = now.Add(-6 * time.Minute).Unix() }), 401, "authz_ttl"},
		{"no iat", "Bearer " + with(func(c jwt.MapClaims) { delete(c, "iat") }), 401, "iat"},
		{"iat in the future", "Bearer " + with(func(c jwt.MapClaims) { c["iat"] = now.Add(2 * time.Minute).Unix() }), 401, "in the future"},
		{"unknown key", "Bearer " + foreign, 401, "not valid"},
		{"groups a string", "Bearer " + with(func(c jwt.MapClaims) { c["groups"] = "ops" }), 403, "is not a list of strings"},
		{"groups a number", "Bearer " + with(func(c jwt.MapClaims) { c["groups"] = 7 }), 403, "is not a list of strings"},
		{"groups with a number", "Bearer " + with(func(c jwt.MapClaims) { c["groups"] = []any{"ops", 7} }), 403, "not a list of strings"},
		{"no groups", "Bearer " + with(func(c jwt.MapClaims) { delete(c, "groups") }), 403, "no role"},
		{"groups without a role", "Bearer " + with(func(c jwt.MapClaims) { c["groups"] = []string{"marketing"} }), 403, "no role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.header != "" {
				hdr = []string{"Authorization", tc.header}
			}
			resp, body := e.do("GET", "/api/apps", "", "", hdr...)
			require.Equal(t, tc.status, resp.StatusCode, "GET /api/apps with %q: %s", tc.header, body)
			if tc.status == 401 {
				assert.True(t, strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer "), "WWW-Authenticate: %q", resp.Header.Get("WWW-Authenticate"))
			}
			assert.Contains(t, resp.Header.Get("WWW-Authenticate")+body, tc.desc)
			assert.NotContains(t, body, "oidc:", "no library error text reaches the client")
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		})
	}
}

// TestBearerKeyRotation: a token signed with a key the provider published
// after the router read its keys is verified after one refetch (unknown
// kid); a token of a key never published is not.
func TestBearerKeyRotation(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	resp, body := e.do("GET", "/api/apps", e.token("alice", "ops"), "")
	require.Equal(t, 200, resp.StatusCode, body)

	p.rotate(t)
	resp, body = e.do("GET", "/api/apps", e.token("bob", "ops"), "")
	assert.Equal(t, 200, resp.StatusCode, "a token of the rotated key: %s", body)

	foreign, err := strangerKey(t).SignJWT(p.claims(e.clock.Now(), "mallory", "ops"))
	require.NoError(t, err)
	resp, body = e.do("GET", "/api/apps", foreign, "")
	assert.Equal(t, 401, resp.StatusCode, "a token of a key the provider never published: %s", body)
}

// TestBearerDecisionCache: a decision lives at most authz_ttl after the
// token was issued and never past its expiry (injected clock).
func TestBearerDecisionCache(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{ttl: 2 * time.Minute})

	tok := e.token("alice", "ops")
	resp, body := e.do("GET", "/api/apps", tok, "")
	require.Equal(t, 200, resp.StatusCode, body)
	e.clock.Advance(119 * time.Second)
	resp, _ = e.do("GET", "/api/apps", tok, "")
	assert.Equal(t, 200, resp.StatusCode, "within authz_ttl of iat")
	e.clock.Advance(2 * time.Second)
	resp, body = e.do("GET", "/api/apps", tok, "")
	assert.Equal(t, 401, resp.StatusCode, "past authz_ttl: %s", body)
	assert.Contains(t, body, "authz_ttl")

	c := p.claims(e.clock.Now(), "bob", "ops")
	c["exp"] = e.clock.Now().Add(30 * time.Second).Unix()
	short := p.sign(t, c)
	resp, body = e.do("GET", "/api/apps", short, "")
	require.Equal(t, 200, resp.StatusCode, body)
	e.clock.Advance(31 * time.Second)
	resp, body = e.do("GET", "/api/apps", short, "")
	assert.Equal(t, 401, resp.StatusCode, "a cached decision does not outlive the token: %s", body)
	assert.Contains(t, body, "expired")
}

// TestRoleReload: SetAuth maps the groups of signed-in callers to the new
// roles on their next request.
func TestRoleReload(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	tok := e.token("carol", "shop-devs")
	resp, _ := e.do("GET", "/api/apps/blog", tok, "")
	require.Equal(t, 404, resp.StatusCode)
	a := *e.auth
	a.Roles = append(a.Roles[:len(a.Roles):len(a.Roles)], testRoles[3])
	a.Roles[len(a.Roles)-1].Group = "shop-devs"
	e.srv.SetAuth(&a)
	resp, body := e.do("GET", "/api/apps/blog", tok, "")
	assert.Equal(t, 200, resp.StatusCode, "after the reload shop-devs own blog: %s", body)
}

// TestProviderDown: while the provider cannot be reached, protected
// routes answer 503 and /healthz and /metrics stay up; once it answers,
// sign-in works.
func TestProviderDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nobody listens there now
	e := newEnv(t, nil, envOptions{issuer: "http://" + addr + "/oidc"})

	for _, path := range []string{"/api/apps", "/api/lines?app=shop", "/api/tls/summary"} {
		resp, body := e.do("GET", path, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "")
		assert.Equal(t, 503, resp.StatusCode, "GET %s with the provider down: %s", path, body)
		assert.NotContains(t, body, addr, "no internal detail")
	}
	resp, body := e.do("GET", "/auth/login", "", "")
	assert.Equal(t, 503, resp.StatusCode, "sign-in with the provider down: %s", body)
	resp, body = e.do("GET", "/healthz", "", "")
	assert.Equal(t, 200, resp.StatusCode, body)
	resp, body = e.do("GET", "/metrics", "", "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, body, "go_goroutines")

	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err, "taking the provider's port back")
	p := startIDP(t, ln)
	// The env was made for another client; make the provider take it.
	p.mu.Lock()
	p.ClientID = e.auth.ClientID
	p.ClientSecret = "secret"
	p.mu.Unlock()
	e.idp = p
	b := e.signIn(newUser("alice", "ops"))
	resp, body = e.doWith(b.c, "GET", "/api/apps", "", "")
	assert.Equal(t, 200, resp.StatusCode, "the provider is back: %s", body)

	// It goes away again: a session due for its re-check gets 503, a
	// token of a key not seen yet 503, while /healthz stays up.
	require.NoError(t, p.Shutdown())
	e.clock.Advance(6 * time.Minute)
	resp, body = e.doWith(b.c, "GET", "/api/apps", "", "")
	assert.Equal(t, 503, resp.StatusCode, "session re-check with the provider down: %s", body)
	foreign, err := strangerKey(t).SignJWT(p.claims(e.clock.Now(), "bob", "ops"))
	require.NoError(t, err)
	resp, body = e.do("GET", "/api/apps", foreign, "")
	assert.Equal(t, 503, resp.StatusCode, "a new kid cannot be looked up: %s", body)
	resp, _ = e.do("GET", "/healthz", "", "")
	assert.Equal(t, 200, resp.StatusCode)
}

// TestSessionLosesGroup: a person removed from a group loses the role
// within authz_ttl: the session is checked with the provider again
// (refresh grant) once its decision is authz_ttl old.
func TestSessionLosesGroup(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{ttl: time.Minute})
	u := newUser("dave", "shop-owners", "shop-devs")
	b := e.signIn(u)
	resp, body := e.doWith(b.c, "GET", "/api/apps/shop", "", "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Contains(t, body, `"role":"owner"`)

	u.setGroups([]string{"shop-devs"}) // the provider's admin removes dave from shop-owners
	e.clock.Advance(59 * time.Second)
	resp, body = e.doWith(b.c, "GET", "/api/apps/shop", "", "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Contains(t, body, `"role":"owner"`, "the decision is cached up to authz_ttl")

	e.clock.Advance(2 * time.Second)
	resp, body = e.doWith(b.c, "GET", "/api/apps/shop", "", "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Contains(t, body, `"role":"collaborator"`, "after authz_ttl the session has the provider's groups of now")
	resp, body = e.doWith(b.c, "PUT", "/api/apps/shop/maintenance", "", `{"maintenance":true}`, "X-CSRF-Token", b.csrf)
	assert.Equal(t, 403, resp.StatusCode, "a collaborator may not switch maintenance: %s", body)

	u.setGroups([]string{})
	e.clock.Advance(61 * time.Second)
	resp, body = e.doWith(b.c, "GET", "/api/apps/shop", "", "")
	assert.Equal(t, 403, resp.StatusCode, "no group left, no role: %s", body)

	u.setGroups("shop-devs")
	e.clock.Advance(61 * time.Second)
	resp, body = e.doWith(b.c, "GET", "/api/apps/shop", "", "")
	assert.Equal(t, 403, resp.StatusCode, "a groups claim of the wrong type: %s", body)
	assert.Contains(t, body, "not a list of strings")
}

// TestSignIn: the authorization code flow with PKCE, state and nonce;
// mismatches and replays are refused with 400.
func TestSignIn(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})

	t.Run("browser redirected to sign-in", func(t *testing.T) {
		resp, _ := e.do("GET", "/api/apps/shop?x=1", "", "", "Accept", "text/html")
		assert.Equal(t, 302, resp.StatusCode)
		assert.Equal(t, "/auth/login?next=%2Fapi%2Fapps%2Fshop%3Fx%3D1", resp.Header.Get("Location"))
		resp, _ = e.do("GET", "/api/apps/shop", "", "", "Accept", "application/json")
		assert.Equal(t, 401, resp.StatusCode)
		assert.Equal(t, `Bearer realm="spacerouter"`, resp.Header.Get("WWW-Authenticate"))
	})

	t.Run("authorize request", func(t *testing.T) {
		resp, _ := e.do("GET", "/auth/login?next=//evil.example/", "", "")
		require.Equal(t, 302, resp.StatusCode)
		loc := mustURL(t, resp.Header.Get("Location"))
		q := loc.Query()
		assert.Equal(t, p.AuthorizationEndpoint(), loc.Scheme+"://"+loc.Host+loc.Path)
		assert.Equal(t, "S256", q.Get("code_challenge_method"))
		assert.NotEmpty(t, q.Get("code_challenge"))
		assert.NotEmpty(t, q.Get("nonce"))
		assert.NotEmpty(t, q.Get("state"))
		assert.Contains(t, q.Get("scope"), "openid")
		assert.Contains(t, q.Get("scope"), "groups")
		sc := resp.Header.Get("Set-Cookie")
		assert.Contains(t, sc, "HttpOnly")
		assert.Contains(t, sc, "SameSite=Lax")
		assert.Contains(t, sc, q.Get("state"), "the state is bound to the browser")
	})

	t.Run("session cookie", func(t *testing.T) {
		b := e.signIn(newUser("alice", "ops"))
		_ = b
		// The sign-in's redirects went through the jar; look at the cookie
		// the callback set by signing in by hand.
		j, cb := e.startLogin(t, newUser("alice", "ops"), nil)
		resp, body := e.doWith(noRedirect(j), "GET", cb, "", "")
		require.Equal(t, 302, resp.StatusCode, body)
		var sc string
		for _, c := range resp.Header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "spacerouter_admin=") {
				sc = c
			}
		}
		assert.Contains(t, sc, "HttpOnly")
		assert.Contains(t, sc, "SameSite=Lax")
		assert.NotContains(t, sc, "Secure", "plain HTTP listener")
	})

	t.Run("state mismatch", func(t *testing.T) {
		j, cb := e.startLogin(t, newUser("alice", "ops"), nil)
		u := mustURL(t, e.url+cb)
		q := u.Query()
		q.Set("state", "forged")
		u.RawQuery = q.Encode()
		resp, body := e.doWith(noRedirect(j), "GET", u.RequestURI(), "", "")
		assert.Equal(t, 400, resp.StatusCode, body)
		assert.Contains(t, body, "state")
	})

	t.Run("state of another browser", func(t *testing.T) {
		_, cb := e.startLogin(t, newUser("alice", "ops"), nil)
		resp, body := e.do("GET", cb, "", "") // no cookie of the sign-in
		assert.Equal(t, 400, resp.StatusCode, body)
	})

	t.Run("nonce mismatch", func(t *testing.T) {
		j, cb := e.startLogin(t, newUser("alice", "ops"), func(q map[string][]string) { q["nonce"] = []string{"other"} })
		resp, body := e.doWith(noRedirect(j), "GET", cb, "", "")
		assert.Equal(t, 400, resp.StatusCode, body)
		assert.Contains(t, body, "nonce")
	})

	t.Run("replayed callback", func(t *testing.T) {
		j, cb := e.startLogin(t, newUser("alice", "ops"), nil)
		resp, body := e.doWith(noRedirect(j), "GET", cb, "", "")
		require.Equal(t, 302, resp.StatusCode, body)
		// The same URL again, with the state cookie put back.
		j2, _ := e.startLogin(t, newUser("alice", "ops"), nil)
		st := mustURL(t, e.url+cb).Query().Get("state")
		j2.SetCookies(mustURL(t, e.url), []*http.Cookie{{Name: "spacerouter_signin", Value: st}})
		resp, body = e.doWith(noRedirect(j2), "GET", cb, "", "")
		assert.Equal(t, 400, resp.StatusCode, "a state is used once: %s", body)
	})

	t.Run("replayed code", func(t *testing.T) {
		j, cb := e.startLogin(t, newUser("alice", "ops"), nil)
		resp, body := e.doWith(noRedirect(j), "GET", cb, "", "")
		require.Equal(t, 302, resp.StatusCode, body)
		code := mustURL(t, e.url+cb).Query().Get("code")
		// A new sign-in of the same browser, answered with the old code.
		j2, cb2 := e.startLogin(t, newUser("alice", "ops"), nil)
		u := mustURL(t, e.url+cb2)
		q := u.Query()
		q.Set("code", code)
		u.RawQuery = q.Encode()
		resp, body = e.doWith(noRedirect(j2), "GET", u.RequestURI(), "", "")
		assert.Equal(t, 400, resp.StatusCode, "a code is exchanged once: %s", body)
		assert.Contains(t, body, "code")
	})

	t.Run("groups of the wrong type", func(t *testing.T) {
		u := newUser("erin")
		u.setGroups(map[string]any{"ops": true})
		j, cb := e.startLogin(t, u, nil)
		resp, body := e.doWith(noRedirect(j), "GET", cb, "", "")
		assert.Equal(t, 403, resp.StatusCode, body)
		assert.Contains(t, body, "not a list of strings")
	})

	t.Run("logout", func(t *testing.T) {
		b := e.signIn(newUser("alice", "ops"))
		resp, _ := e.doWith(b.c, "POST", "/auth/logout", "", "")
		assert.Equal(t, 403, resp.StatusCode, "logout without the CSRF token")
		resp, _ = e.doWith(b.c, "POST", "/auth/logout", "", "", "X-CSRF-Token", b.csrf)
		assert.Equal(t, 204, resp.StatusCode)
		resp, _ = e.doWith(b.c, "GET", "/api/apps", "", "")
		assert.Equal(t, 401, resp.StatusCode, "signed out")
	})
}

// TestSecureCookies: over TLS the cookies are Secure and __Host-.
func TestSecureCookies(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{tls: true})
	resp, _ := e.do("GET", "/auth/login", "", "")
	require.Equal(t, 302, resp.StatusCode)
	sc := resp.Header.Get("Set-Cookie")
	assert.True(t, strings.HasPrefix(sc, "__Host-spacerouter_signin="), sc)
	for _, attr := range []string{"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} {
		assert.Contains(t, sc, attr)
	}
}

// startLogin starts a sign-in of u in a new cookie jar, lets the provider
// authorize it (mod changes the authorize request's query first) and
// returns the jar and the callback's path and query, not yet visited.
func (e *env) startLogin(t *testing.T, u *testUser, mod func(map[string][]string)) (http.CookieJar, string) {
	t.Helper()
	j := newJar(t)
	c := noRedirect(j)
	resp, body := e.doWith(c, "GET", "/auth/login", "", "")
	require.Equal(t, 302, resp.StatusCode, body)
	auth := mustURL(t, resp.Header.Get("Location"))
	if mod != nil {
		q := auth.Query()
		mod(q)
		auth.RawQuery = q.Encode()
	}
	e.idp.queueUser(u)
	r2, err := c.Get(auth.String())
	require.NoError(t, err)
	r2.Body.Close()
	require.Equal(t, 302, r2.StatusCode, "the provider's authorize")
	cb := mustURL(t, r2.Header.Get("Location"))
	require.Equal(t, "/auth/callback", cb.Path)
	return j, cb.RequestURI()
}

// TestSignInNextStaysHere: a sign-in started with a next that a browser
// would read as another site returns to the dashboard, never there.
func TestSignInNextStaysHere(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	for _, next := range []string{"/\t/evil.example/", "//evil.example/", "/\\evil.example/", "https://evil.example/"} {
		j := newJar(t)
		c := noRedirect(j)
		resp, body := e.doWith(c, "GET", "/auth/login?next="+url.QueryEscape(next), "", "")
		require.Equal(t, 302, resp.StatusCode, body)
		e.idp.queueUser(newUser("alice", "ops"))
		r2, err := c.Get(resp.Header.Get("Location"))
		require.NoError(t, err)
		r2.Body.Close()
		require.Equal(t, 302, r2.StatusCode)
		resp, body = e.doWith(c, "GET", mustURL(t, r2.Header.Get("Location")).RequestURI(), "", "")
		require.Equal(t, 302, resp.StatusCode, body)
		assert.Equal(t, "/", resp.Header.Get("Location"), "next=%q", next)
	}
}

// TestSafeNext: the sign-in returns only to a path of the admin listener.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "/api/apps?x=1": "/api/apps?x=1", "": "/", "//evil.example/": "/", "https://evil.example/": "/",
		"/\\evil.example": "/", "evil": "/", "/a\r\nSet-Cookie: x": "/",
		// A browser drops tabs and line breaks from a Location before it
		// resolves it: "/\t/evil.example" would be "//evil.example".
		"/\t/evil.example": "/", "/\n/evil.example": "/", "/\x00x": "/", "/\x7fx": "/",
	} {
		assert.Equal(t, want, safeNext(in), "next=%q", in)
	}
}

// TestShorterTTLAtReload: a reload that shortens authz_ttl holds for the
// decisions made before it too: a bearer token's ends authz_ttl after it
// was issued, a session's is checked with the provider again once it is
// the new authz_ttl old.
func TestShorterTTLAtReload(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{ttl: 5 * time.Minute})
	tok := e.token("alice", "ops")
	resp, body := e.do("GET", "/api/apps", tok, "")
	require.Equal(t, 200, resp.StatusCode, body)
	u := newUser("dave", "shop-owners")
	b := e.signIn(u)
	resp, body = e.doWith(b.c, "GET", "/api/apps/shop", "", "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Contains(t, body, `"role":"owner"`)

	a := *e.auth
	a.AuthzTTL = time.Minute
	e.srv.SetAuth(&a)
	u.setGroups([]string{"shop-devs"})
	e.clock.Advance(61 * time.Second)
	resp, body = e.do("GET", "/api/apps", tok, "")
	assert.Equal(t, 401, resp.StatusCode, "the token was issued longer ago than the new authz_ttl: %s", body)
	assert.Contains(t, body, "authz_ttl")
	resp, body = e.doWith(b.c, "GET", "/api/apps/shop", "", "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Contains(t, body, `"role":"collaborator"`, "the session was checked again after the new authz_ttl")
}
