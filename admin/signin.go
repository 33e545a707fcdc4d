package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/spacerouter/spacerouter/logging"
)

// session is a browser's sign-in. The cookie holds a random value; the
// store keys the session by its SHA-256.
type session struct {
	key     [32]byte
	csrf    string // the page's CSRF token (immutable)
	created time.Time

	// mu serializes re-checks; it guards d and refresh.
	mu      sync.Mutex
	d       decision
	refresh string // the provider's refresh token; "" when it gave none
}

// sessionStore holds the browser sessions in memory: a restart signs
// everyone out, and no session outlives sessionLifetime.
type sessionStore struct {
	// mu guards m.
	mu sync.Mutex
	m  map[[32]byte]*session
}

// find returns r's session, nil when it has none that lives.
func (st *sessionStore) find(r *http.Request, name string, now time.Time) *session {
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" {
		return nil
	}
	key := sha256.Sum256([]byte(c.Value))
	st.mu.Lock()
	defer st.mu.Unlock()
	sess := st.m[key]
	if sess != nil && now.Sub(sess.created) >= sessionLifetime {
		delete(st.m, key)
		return nil
	}
	return sess
}

// add stores a new session and returns the cookie value for it.
func (st *sessionStore) add(d decision, refresh string, now time.Time) (string, *session) {
	value := randomToken()
	sess := &session{key: sha256.Sum256([]byte(value)), csrf: randomToken(), created: now, d: d, refresh: refresh}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.m) >= maxEntries {
		for k, s := range st.m {
			if now.Sub(s.created) >= sessionLifetime {
				delete(st.m, k)
			}
		}
		if len(st.m) >= maxEntries { // drop the oldest
			var oldest *session
			for _, s := range st.m {
				if oldest == nil || s.created.Before(oldest.created) {
					oldest = s
				}
			}
			delete(st.m, oldest.key)
		}
	}
	st.m[sess.key] = sess
	return value, sess
}

// drop ends a session.
func (st *sessionStore) drop(sess *session) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, sess.key)
}

// pendingLogin is a sign-in started by /auth/login, waiting for its
// callback.
type pendingLogin struct {
	nonce, verifier, next string
	started               time.Time
	client                string // the address it came from
}

// maxPendingPerClient bounds the sign-ins in progress from one address: a
// flood of /auth/login from one host makes room among its own, never by
// dropping other people's.
const maxPendingPerClient = 32

// pendingStore holds the sign-ins in progress by their state.
type pendingStore struct {
	// mu guards m and perClient.
	mu        sync.Mutex
	m         map[string]*pendingLogin
	perClient map[string]int
}

func (ps *pendingStore) add(state string, p *pendingLogin) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.perClient == nil {
		ps.perClient = map[string]int{}
	}
	if ps.perClient[p.client] >= maxPendingPerClient {
		ps.dropOldest(func(q *pendingLogin) bool { return q.client == p.client })
	}
	if len(ps.m) >= maxEntries {
		for k, q := range ps.m {
			if p.started.Sub(q.started) >= loginLifetime {
				ps.deleteLocked(k, q)
			}
		}
		if len(ps.m) >= maxEntries {
			ps.dropOldest(func(*pendingLogin) bool { return true })
		}
	}
	ps.m[state] = p
	ps.perClient[p.client]++
}

// dropOldest removes the oldest sign-in that match selects; ps.mu is held.
func (ps *pendingStore) dropOldest(match func(*pendingLogin) bool) {
	var oldest string
	var op *pendingLogin
	for k, q := range ps.m {
		if match(q) && (op == nil || q.started.Before(op.started)) {
			oldest, op = k, q
		}
	}
	if op != nil {
		ps.deleteLocked(oldest, op)
	}
}

// deleteLocked removes the sign-in of state; ps.mu is held.
func (ps *pendingStore) deleteLocked(state string, p *pendingLogin) {
	delete(ps.m, state)
	if ps.perClient[p.client]--; ps.perClient[p.client] <= 0 {
		delete(ps.perClient, p.client)
	}
}

// take removes and returns the sign-in of state: a state is used once.
func (ps *pendingStore) take(state string, now time.Time) *pendingLogin {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.m[state]
	if p == nil {
		return nil
	}
	ps.deleteLocked(state, p)
	if now.Sub(p.started) >= loginLifetime {
		return nil
	}
	return p
}

// usedCodes remembers the authorization codes already exchanged, so a
// replayed code is refused here even by a provider that would take it
// twice.
type usedCodes struct {
	// mu guards m.
	mu sync.Mutex
	m  map[[32]byte]time.Time
}

// first records code and reports whether it was not seen before.
func (u *usedCodes) first(code string, now time.Time) bool {
	k := sha256.Sum256([]byte(code))
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, seen := u.m[k]; seen {
		return false
	}
	if len(u.m) >= maxEntries {
		for k, t := range u.m {
			if now.Sub(t) >= loginLifetime {
				delete(u.m, k)
			}
		}
	}
	u.m[k] = now
	return true
}

// randomToken returns 32 random bytes in base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext returns next when it is a path of this listener, else "/": the
// sign-in never redirects elsewhere. A control character refuses it too:
// a browser drops tabs and line breaks from a Location before resolving
// it, so "/\t/evil.example" would take it to //evil.example.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if next[i] < 0x20 || next[i] == 0x7f {
			return "/"
		}
	}
	return next
}

// setCookie sets an HttpOnly, SameSite=Lax cookie, Secure over TLS.
func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// handleLogin starts the authorization code flow: a new state, nonce and
// PKCE verifier, the state also in a cookie so the callback comes from
// the same browser.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	_, _, oc, err := s.pv.get(r.Context())
	if err != nil {
		if err != errProviderDown {
			s.log.Warn("admin: the identity provider is unreachable", zap.Error(err))
		}
		textError(w, http.StatusServiceUnavailable, "The identity provider is unreachable: try again later.")
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	client, _, _ := net.SplitHostPort(r.RemoteAddr)
	s.pending.add(state, &pendingLogin{nonce: nonce, verifier: verifier, next: safeNext(r.URL.Query().Get("next")),
		started: s.now(), client: client})
	s.setCookie(w, s.login, state, int(loginLifetime/time.Second))
	http.Redirect(w, r, oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// handleCallback completes a sign-in: the state must be the browser's
// and unused, the code is exchanged once (with the PKCE verifier), and
// the ID token must carry the sign-in's nonce.
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.setCookie(w, s.login, "", -1)
	if q.Get("error") != "" {
		textError(w, http.StatusBadRequest, "The identity provider refused the sign-in. Start again at /auth/login.")
		return
	}
	state, code := q.Get("state"), q.Get("code")
	c, err := r.Cookie(s.login)
	if state == "" || code == "" || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		textError(w, http.StatusBadRequest, "The sign-in state does not match this browser's. Start again at /auth/login.")
		return
	}
	now := s.now()
	p := s.pending.take(state, now)
	if p == nil {
		textError(w, http.StatusBadRequest, "This sign-in was used already or took too long. Start again at /auth/login.")
		return
	}
	if !s.codes.first(code, now) {
		textError(w, http.StatusBadRequest, "This authorization code was used already. Start again at /auth/login.")
		return
	}
	d, refresh, err := s.exchange(r, code, p)
	if err != nil {
		s.signInFailed(w, err)
		return
	}
	value, _ := s.sessions.add(d, refresh, now)
	s.setCookie(w, s.cookie, value, int(sessionLifetime/time.Second))
	s.log.Info("admin sign-in", zap.String(logging.KeySubject, d.subject), zap.String(logging.KeyUser, d.name))
	http.Redirect(w, r, p.next, http.StatusFound)
}

// Reasons a callback fails.
var (
	errCodeRefused = errors.New("the identity provider refused the authorization code")
	errNonce       = errors.New("the ID token's nonce is not this sign-in's")
	errNoIDToken   = errors.New("the identity provider sent no ID token")
)

// exchange trades the code for tokens and checks the ID token.
func (s *Server) exchange(r *http.Request, code string, p *pendingLogin) (decision, string, error) {
	_, _, oc, err := s.pv.get(r.Context())
	if err != nil {
		return decision{}, "", err
	}
	tok, err := oc.Exchange(s.pv.ctx(r.Context()), code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		if errors.Is(err, errProviderDown) {
			return decision{}, "", err
		}
		s.log.Info("admin sign-in: code refused", zap.Error(err))
		return decision{}, "", errCodeRefused
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return decision{}, "", errNoIDToken
	}
	pol := s.policy.Load()
	id, err := s.pv.verify(r.Context(), raw, pol.groupsClaim)
	if err != nil {
		return decision{}, "", err
	}
	if subtle.ConstantTimeCompare([]byte(id.nonce), []byte(p.nonce)) != 1 {
		return decision{}, "", errNonce
	}
	now := s.now()
	return decision{subject: id.subject, name: id.name, groups: id.groups,
		since: now, until: earliest(now.Add(pol.ttl), id.expires)}, tok.RefreshToken, nil
}

// signInFailed answers a failed callback.
func (s *Server) signInFailed(w http.ResponseWriter, err error) {
	var gt *groupsTypeError
	switch {
	case errors.Is(err, errProviderDown):
		if err != errProviderDown {
			s.log.Warn("admin: the identity provider is unreachable", zap.Error(err))
		}
		textError(w, http.StatusServiceUnavailable, "The identity provider is unreachable: try again later.")
	case errors.As(err, &gt):
		textError(w, http.StatusForbidden, "Signed in, but "+gt.Error()+": the provider must send the groups as a list of strings.")
	case errors.Is(err, errCodeRefused), errors.Is(err, errNonce), errors.Is(err, errNoIDToken):
		textError(w, http.StatusBadRequest, "Sign-in failed: "+err.Error()+". Start again at /auth/login.")
	default:
		s.log.Info("admin sign-in: ID token refused", zap.Error(err))
		textError(w, http.StatusBadRequest, "Sign-in failed: "+errTokenInvalid.Error()+". Start again at /auth/login.")
	}
}

// handleLogout ends the browser's session; it needs the CSRF token.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	sess := s.sessions.find(r, s.cookie, s.now())
	if sess == nil {
		textError(w, http.StatusUnauthorized, "Not signed in.")
		return
	}
	if !sess.csrfOK(r.Header.Get("X-CSRF-Token")) {
		textError(w, http.StatusForbidden, "Missing or wrong CSRF token.")
		return
	}
	s.sessions.drop(sess)
	s.setCookie(w, s.cookie, "", -1)
	w.WriteHeader(http.StatusNoContent)
}

// textError answers a short plain-text message to a browser.
func textError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}
