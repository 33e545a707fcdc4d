package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
)

// Defaults of Options.
const (
	// DefaultProviderRetry is the least time between two lookups of a
	// provider that did not answer.
	DefaultProviderRetry = 2 * time.Second
	// DefaultProviderTimeout bounds each request to the provider.
	DefaultProviderTimeout = 10 * time.Second
	// maxBody is the largest request body the API reads (a JSON object
	// of one or two short fields); beyond it, 413.
	maxBody = 4 << 10
	// sessionLifetime is the longest a browser session lasts, re-checked
	// or not; then the browser signs in again.
	sessionLifetime = 12 * time.Hour
	// loginLifetime is how long a started sign-in may take.
	loginLifetime = 10 * time.Minute
	// maxEntries bounds each in-memory table (sessions, pending sign-ins,
	// bearer decisions, used codes).
	maxEntries = 10000
)

// Options configure a Server.
type Options struct {
	// Auth is admin.auth: the provider, the client and the roles.
	// Required.
	Auth *config.AdminAuth
	// TLS is whether the admin listener serves HTTPS: the cookies are
	// Secure then (and named with the __Host- prefix).
	TLS bool
	// Backend is the router. Required.
	Backend Backend
	// Log receives the audit lines and errors; nil: none.
	Log *zap.Logger
	// Now is the clock of every authorisation decision (token expiry and
	// age, authz_ttl, sessions); nil: time.Now. Tests inject one.
	Now func() time.Time
	// Transport carries the requests to the provider; nil: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// ProviderRetry is the least time between two lookups of a provider
	// that failed; 0: DefaultProviderRetry.
	ProviderRetry time.Duration
	// ProviderTimeout bounds each request to the provider; 0:
	// DefaultProviderTimeout.
	ProviderTimeout time.Duration
}

// policy is the part of admin.auth a reload may change.
type policy struct {
	roles       *roleMap
	ttl         time.Duration
	groupsClaim string
}

// Server is the admin API, the sign-in and the dashboard.
type Server struct {
	backend Backend
	log     *zap.Logger
	now     func() time.Time
	pv      *provider
	secure  bool
	cookie  string // the session cookie's name
	login   string // the sign-in cookie's name (the state)
	policy  atomic.Pointer[policy]

	sessions sessionStore
	pending  pendingStore
	bearers  bearerCache
	codes    usedCodes
}

// New returns a Server for o. It reads the client secret file.
func New(o Options) (*Server, error) {
	if o.Auth == nil || o.Backend == nil {
		return nil, errors.New("admin.New: Options.Auth and Options.Backend are required")
	}
	secret := ""
	if o.Auth.ClientSecretFile != "" {
		b, err := os.ReadFile(o.Auth.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("admin.auth.client_secret_file: %w", err)
		}
		if secret = strings.TrimSpace(string(b)); secret == "" {
			return nil, fmt.Errorf("admin.auth.client_secret_file: %q is empty: want the client secret the provider issued", o.Auth.ClientSecretFile)
		}
	}
	s := &Server{backend: o.Backend, log: o.Log, now: o.Now, secure: o.TLS}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.cookie, s.login = "spacerouter_admin", "spacerouter_signin"
	if s.secure {
		s.cookie, s.login = "__Host-spacerouter_admin", "__Host-spacerouter_signin"
	}
	tr := o.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	s.pv = &provider{issuer: o.Auth.Issuer, clientID: o.Auth.ClientID, secret: secret, redirect: o.Auth.RedirectURL,
		client: &http.Client{Transport: markTransport{tr}, Timeout: cmpOr(o.ProviderTimeout, DefaultProviderTimeout)},
		now:    s.now, retry: cmpOr(o.ProviderRetry, DefaultProviderRetry)}
	s.SetAuth(o.Auth)
	s.sessions.m = map[[32]byte]*session{}
	s.pending.m = map[string]*pendingLogin{}
	s.bearers.m = map[[32]byte]decision{}
	s.codes.m = map[[32]byte]time.Time{}
	return s, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// SetAuth takes the parts of admin.auth a reload changes: roles, authz_ttl
// and groups_claim. Signed-in callers keep their groups and get the new
// roles on their next request; the issuer, the client and the redirect
// URL need a restart.
func (s *Server) SetAuth(a *config.AdminAuth) {
	ttl := a.AuthzTTL
	if ttl <= 0 || ttl > config.MaxAuthzTTL {
		ttl = config.MaxAuthzTTL
	}
	claim := a.GroupsClaim
	if claim == "" {
		claim = config.DefaultGroupsClaim
	}
	s.policy.Store(&policy{roles: newRoleMap(a.Roles), ttl: ttl, groupsClaim: claim})
}

// Handler returns the admin listener's handler: the admin routes (/api/,
// /auth/, the dashboard at / and its /static/ files), and base (the
// router's /healthz and /metrics, never behind login) for every other
// path. A path with a dot segment, an empty segment or a backslash is
// answered 404 before any route sees it.
func (s *Server) Handler(base http.Handler) http.Handler {
	mux := http.NewServeMux()
	s.routes(mux)
	mux.Handle("/", base)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cleanPath(r.URL.Path) {
			writeError(w, http.StatusNotFound, "not found")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// cleanPath reports whether p is a plain absolute path: no "." or ".."
// segment, no "//", no backslash (the mux would otherwise redirect such a
// path to its cleaned form, which tells an app's name back).
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' || strings.ContainsAny(p, "\\\x00") || strings.Contains(p, "//") {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// routes registers the admin routes on mux (SPEC.md section 13). A
// route's path asked with another method answers 405 with Allow (before
// any sign-in: the routes are no secret, and the answer is the same for
// every app name).
func (s *Server) routes(mux *http.ServeMux) {
	allow := map[string][]string{} // path pattern -> methods, in order
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, h)
		method, path, _ := strings.Cut(pattern, " ")
		if method == "GET" {
			allow[path] = append(allow[path], "GET", "HEAD")
		} else {
			allow[path] = append(allow[path], method)
		}
	}
	handle("GET /auth/login", http.HandlerFunc(s.handleLogin))
	handle("GET /auth/callback", http.HandlerFunc(s.handleCallback))
	handle("POST /auth/logout", http.HandlerFunc(s.handleLogout))
	handle("GET /{$}", http.HandlerFunc(s.handleDashboard))
	mux.Handle("GET /static/", staticFiles())
	api := []struct {
		pattern string
		h       func(http.ResponseWriter, *http.Request, *caller)
	}{
		{"GET /api/apps", s.apiApps},
		{"GET /api/apps/{app}", s.apiApp},
		{"PUT /api/apps/{app}/maintenance", s.apiMaintenance},
		{"GET /api/apps/{app}/clients", s.apiClients},
		{"POST /api/apps/{app}/clients", s.apiIssue},
		{"GET /api/apps/{app}/clients/{id}/download", s.apiDownload},
		{"DELETE /api/apps/{app}/clients/{id}", s.apiRevoke},
		{"GET /api/tls/connections", s.apiTLSConnections},
		{"GET /api/tls/summary", s.apiTLSSummary},
		{"GET /api/lines", s.apiLines},
		{"GET /api/routers", s.apiRouters},
	}
	for _, a := range api {
		handle(a.pattern, s.protect(a.h))
	}
	for path, methods := range allow {
		list := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", list)
			writeError(w, http.StatusMethodNotAllowed, "method not allowed: use "+list)
		})
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError answers a JSON error with a message fit for the caller.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}
