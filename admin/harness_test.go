package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spacerouter/spacerouter/admin/view"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// testClock is the injected clock of the authorisation decisions. It
// starts at the wall clock, since mockoidc stamps its tokens with it.
type testClock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.d)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d += d
}

// testUser is a mockoidc user whose groups claim the test changes (any
// JSON value, to send the wrong type too).
type testUser struct {
	sub, email string

	mu     sync.Mutex
	groups any
}

func newUser(sub string, groups ...string) *testUser {
	return &testUser{sub: sub, email: sub + "@example.com", groups: groups}
}

func (u *testUser) setGroups(g any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.groups = g
}

func (u *testUser) ID() string { return u.sub }

func (u *testUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]string{"sub": u.sub, "email": u.email})
}

func (u *testUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	b, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	var m jwt.MapClaims
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	m["email"] = u.email
	if u.groups != nil {
		m["groups"] = u.groups
	}
	return m, nil
}

// idp is a mockoidc provider started by the test on loopback. Its
// handlers run one at a time under mu (mockoidc's session store is not
// safe for concurrent use), and the test changes its key under mu too.
type idp struct {
	*mockoidc.MockOIDC
	mu sync.Mutex
}

// startIDP starts mockoidc on ln (nil: a new loopback port).
func startIDP(t testing.TB, ln net.Listener) *idp {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	require.NoError(t, err)
	p := &idp{MockOIDC: m}
	require.NoError(t, m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			defer p.mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}))
	if ln == nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
	}
	require.NoError(t, m.Start(ln, nil))
	t.Cleanup(func() { m.Shutdown() })
	return p
}

// sign signs claims with the provider's current key.
func (p *idp) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	tok, err := p.Keypair.SignJWT(claims)
	require.NoError(t, err)
	return tok
}

// rotate makes the provider sign with a new key and publish only it.
func (p *idp) rotate(t testing.TB) {
	t.Helper()
	kp, err := mockoidc.RandomKeypair(2048)
	require.NoError(t, err)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Keypair = kp
}

// queueUser makes u the next user to sign in.
func (p *idp) queueUser(u *testUser) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.QueueUser(u)
}

// claims returns a valid ID token's claims for sub with groups, issued
// now by the clock.
func (p *idp) claims(now time.Time, sub string, groups ...string) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": p.Issuer(), "aud": []string{p.ClientID}, "sub": sub, "email": sub + "@example.com",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "groups": groups,
	}
}

// fakeBackend is the router as package admin sees it, recording changes.
type fakeBackend struct {
	hub *lineHub

	mu          sync.Mutex
	apps        []view.App
	maintenance []string // "app=on|off|clear by who"
	clients     map[string][]view.Client
	conns       []view.TLSConnection
	failApps    bool // App answers an internal error
}

func newFakeBackend() *fakeBackend {
	exp := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	traffic := view.Traffic{WindowSeconds: 300, Requests: 600, PerMinute: []uint64{100, 120, 130, 110, 140},
		Statuses: map[string]uint64{"2xx": 590, "5xx": 10}, Codes: map[string]uint64{"H12": 4, "H80": 6}}
	b := &fakeBackend{hub: &lineHub{apps: map[string]*logging.Recent{}}, clients: map[string][]view.Client{}}
	for _, name := range []string{"shop", "blog", "intranet"} {
		b.apps = append(b.apps, view.App{Name: name, Domains: []string{name + ".example.com"},
			Dynos:    []view.Dyno{{Name: "web.1", Address: "127.0.0.1:5001", State: "up"}, {Name: "web.2", Address: "127.0.0.1:5002", State: "crashed"}},
			MTLSMode: "off", TLSSource: view.TLSFiles, Traffic: traffic})
		b.clients[name] = []view.Client{{ID: "00000000000000a1", App: name, Name: "laptop", Serial: "abc", Created: exp.AddDate(-1, 0, 0), NotAfter: exp, Status: "ready"}}
	}
	b.conns = []view.TLSConnection{
		{RemoteAddr: "127.0.0.1:40001", App: "shop", SNI: "shop.example.com", TLSVersion: "tls1.3", Served: view.ServedCertificate{Serial: "1a", NotAfter: exp, Source: "file"}},
		{RemoteAddr: "127.0.0.1:40002", App: "blog", SNI: "blog.example.com", TLSVersion: "tls1.3", Served: view.ServedCertificate{Serial: "2b", NotAfter: exp, Source: "file"},
			Client: &view.ClientCertificate{Subject: "CN=laptop", Serial: "c1", CA: "CN=space CA", CASHA256: "ff00", Status: "ok"}},
		{RemoteAddr: "127.0.0.1:40003", App: "", SNI: "gone.example.com", TLSVersion: "tls1.2", Served: view.ServedCertificate{Serial: "3c", NotAfter: exp, Source: "acme"}},
	}
	return b
}

// Routers implements RoutersBackend: two routers, one refusing a key.
func (b *fakeBackend) Routers(context.Context) ([]view.Router, error) {
	return []view.Router{
		{ID: "edge-1", Revision: 42, Refused: []view.Refusal{}},
		{ID: "edge-2", Revision: 41, Refused: []view.Refusal{{Key: "apps/bad", Problem: "domains[0]: not a host name"}}},
	}, nil
}

func (b *fakeBackend) find(name string) int {
	return slices.IndexFunc(b.apps, func(a view.App) bool { return a.Name == name })
}

func (b *fakeBackend) Apps() []view.App {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.apps)
}

func (b *fakeBackend) App(name string) (view.AppDetail, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failApps {
		return view.AppDetail{}, fmt.Errorf("reading /var/lib/spacerouter/secret-state: permission denied")
	}
	i := b.find(name)
	if i < 0 {
		return view.AppDetail{}, view.Errorf(view.ErrNotFound, "no app %s", name)
	}
	return view.AppDetail{App: b.apps[i], Certificates: []view.Certificate{{Source: "file", Names: []string{name + ".example.com"},
		State: "ok", Serial: "1a", NotAfter: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)}}}, nil
}

func (b *fakeBackend) SetMaintenance(app string, on *bool, who string) (view.App, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.find(app)
	if i < 0 {
		return view.App{}, view.Errorf(view.ErrNotFound, "no app %s", app)
	}
	rec := "clear"
	if on != nil {
		rec = map[bool]string{true: "on", false: "off"}[*on]
		b.apps[i].Maintenance = *on
	} else {
		b.apps[i].Maintenance = false
	}
	b.apps[i].MaintenanceOverride = on
	b.maintenance = append(b.maintenance, app+"="+rec+" by "+who)
	return b.apps[i], nil
}

func (b *fakeBackend) maintenanceLog() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.maintenance)
}

func (b *fakeBackend) Clients(app string) ([]view.Client, error) {
	if err := b.exists(app); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.clients[app]), nil
}

func (b *fakeBackend) IssueClient(app, name string) (view.Client, error) {
	if strings.ContainsAny(name, " /") {
		return view.Client{}, view.Errorf(view.ErrInvalid, "name %q: want letters, digits, '.', '-' or '_'", name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := view.Client{ID: fmt.Sprintf("%016x", 0xb0+len(b.clients[app])), App: app, Name: name, Status: "ready"}
	b.clients[app] = append(b.clients[app], c)
	return c, nil
}

func (b *fakeBackend) DownloadClient(app, id string) ([]view.File, error) {
	return []view.File{{Name: "client.crt", Mode: 0o644, Data: []byte("CERT " + app + " " + id)},
		{Name: "client.key", Mode: 0o600, Data: []byte("KEY")}}, nil
}

func (b *fakeBackend) RevokeClient(app, id string) (view.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, c := range b.clients[app] {
		if c.ID == id {
			b.clients[app][i].Status = "revoked"
			return b.clients[app][i], nil
		}
	}
	return view.Client{}, view.Errorf(view.ErrNotFound, "no certificate %s", id)
}

func (b *fakeBackend) TLSConnections(f view.TLSFilter) []view.TLSConnection {
	var out []view.TLSConnection
	for _, c := range b.conns {
		if f.App == "" || c.App == f.App {
			out = append(out, c)
		}
	}
	return out
}

func (b *fakeBackend) exists(app string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.find(app) < 0 {
		return view.Errorf(view.ErrNotFound, "no app %s", app)
	}
	return nil
}

func (b *fakeBackend) RecentLines(app string, n int) ([]string, error) {
	if err := b.exists(app); err != nil {
		return nil, err
	}
	return b.hub.app(app).Last(n), nil
}

func (b *fakeBackend) Subscribe(app string) (view.Subscription, error) {
	if err := b.exists(app); err != nil {
		return nil, err
	}
	return b.hub.app(app).Subscribe(), nil
}

// env is one admin listener under test: a provider, the fake router, the
// admin Server behind an httptest server with /healthz and /metrics.
type env struct {
	t       testing.TB
	idp     *idp
	backend *fakeBackend
	clock   *testClock
	srv     *Server
	http    *httptest.Server
	url     string
	logs    *observer.ObservedLogs
	auth    *config.AdminAuth
}

// roles of the tests: ops are admins; shop has owners and collaborators;
// blog has owners.
var testRoles = []config.RoleMapping{
	{Group: "ops", Role: config.RoleAdmin},
	{Group: "shop-owners", Role: config.RoleOwner, Apps: []string{"shop"}},
	{Group: "shop-devs", Role: config.RoleCollaborator, Apps: []string{"shop"}},
	{Group: "blog-owners", Role: config.RoleOwner, Apps: []string{"blog"}},
}

type envOptions struct {
	issuer string        // default: the idp's
	ttl    time.Duration // default 5m
	tls    bool
	// fileSpace: the backend has no Routers (a space from a file).
	fileSpace bool
}

// newEnv starts an admin listener for p (nil: no provider; o.issuer then
// names one that is not there).
func newEnv(t testing.TB, p *idp, o envOptions) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	clientID, secret := "spacerouter-admin", "secret"
	if p != nil {
		clientID, secret = p.ClientID, p.ClientSecret
		if o.issuer == "" {
			o.issuer = p.Issuer()
		}
	}
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(secret+"\n"), 0o600))
	e := &env{t: t, idp: p, backend: newFakeBackend(), clock: &testClock{}}
	e.auth = &config.AdminAuth{Issuer: o.issuer, ClientID: clientID, ClientSecretFile: secretFile,
		RedirectURL: base + "/auth/callback", GroupsClaim: "groups", AuthzTTL: cmpOr(o.ttl, 5*time.Minute), Roles: testRoles}
	core, logs := observer.New(zap.DebugLevel)
	e.logs = logs
	var backend Backend = e.backend
	if o.fileSpace {
		backend = struct{ Backend }{e.backend} // hides Routers
	}
	e.srv, err = New(Options{Auth: e.auth, TLS: o.tls, Backend: backend, Log: zap.New(core), Now: e.clock.Now, ProviderRetry: time.Nanosecond})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	e.http = &httptest.Server{Listener: ln, Config: &http.Server{Handler: e.srv.Handler(mux), ReadHeaderTimeout: 5 * time.Second}}
	e.http.Start()
	t.Cleanup(e.http.Close)
	e.url = base
	return e
}

// do sends one request with an optional bearer token and body; it does
// not follow redirects.
func (e *env) do(method, path, token string, body string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	return e.doWith(noRedirect(nil), method, path, token, body, hdr...)
}

func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) doWith(c *http.Client, method, path, token string, body string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(e.t, err, "%s %s", method, path)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(e.t, err)
	return resp, string(b)
}

// token returns a fresh bearer ID token for sub with groups.
func (e *env) token(sub string, groups ...string) string {
	return e.idp.sign(e.t, e.idp.claims(e.clock.Now(), sub, groups...))
}

// browser is a cookie-keeping HTTP client that signs in like a browser.
type browser struct {
	c    *http.Client
	csrf string
}

// signIn signs u in through the provider (login, authorize, callback)
// and reads the dashboard's CSRF token.
func (e *env) signIn(u *testUser) *browser {
	e.t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	b := &browser{c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	e.idp.queueUser(u)
	resp, page := e.doWith(b.c, "GET", "/", "", "", "Accept", "text/html")
	require.Equal(e.t, http.StatusOK, resp.StatusCode, "the dashboard after sign-in: %s", page)
	_, after, ok := strings.Cut(page, `name="csrf-token" content="`)
	require.True(e.t, ok, "the page has a CSRF token: %s", page)
	b.csrf, _, _ = strings.Cut(after, `"`)
	require.NotEmpty(e.t, b.csrf)
	return b
}

// key is an RSA key the provider never published.
func strangerKey(t testing.TB) *mockoidc.Keypair {
	kp, err := mockoidc.RandomKeypair(2048)
	require.NoError(t, err)
	return kp
}

func newJar(t testing.TB) http.CookieJar {
	j, err := cookiejar.New(nil)
	require.NoError(t, err)
	return j
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// lineHub keeps the fake backend's router lines by app, as the router
// does: a logging.Recent per app.
type lineHub struct {
	mu   sync.Mutex
	apps map[string]*logging.Recent
}

func (h *lineHub) app(name string) *logging.Recent {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.apps[name]
	if r == nil {
		r = logging.NewRecent(logging.RecentLines)
		h.apps[name] = r
	}
	return r
}

func (h *lineHub) Publish(app string, line []byte) { h.app(app).Add(line) }

func (h *lineHub) Viewers(app string) int { return h.app(app).Subscribers() }
