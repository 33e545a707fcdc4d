package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/spacerouter/spacerouter/logging"
)

// caller is who makes a request, and what they may do.
type caller struct {
	subject, name string
	g             grants
	sess          *session  // nil for a bearer token
	until         time.Time // the decision holds until then
}

// decision is a cached authorisation decision: who, and their groups
// (roles are mapped from the groups on every request, so a reload of the
// roles applies at once). It holds until until, and while since (a bearer
// token's iat, a session's last check) is less than the authz_ttl in
// force old, so a reload that shortens authz_ttl shortens it too.
type decision struct {
	subject, name string
	groups        []string
	since, until  time.Time
}

// holds reports whether d still holds at now under pol.
func (d *decision) holds(now time.Time, pol *policy) bool {
	return now.Before(d.until) && now.Sub(d.since) < pol.ttl
}

// end returns when d stops holding under pol.
func (d *decision) end(pol *policy) time.Time {
	return earliest(d.until, d.since.Add(pol.ttl))
}

// bearerCache holds the decisions on bearer tokens by the token's
// SHA-256, each until at most authz_ttl after the token was issued and
// never past its expiry.
type bearerCache struct {
	// mu guards m.
	mu sync.Mutex
	m  map[[32]byte]decision
}

func (c *bearerCache) get(k [32]byte, now time.Time) (decision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[k]
	if ok && !now.Before(d.until) {
		delete(c.m, k)
		ok = false
	}
	return d, ok
}

func (c *bearerCache) put(k [32]byte, d decision, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxEntries {
		for k, d := range c.m {
			if !now.Before(d.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxEntries {
			clear(c.m)
		}
	}
	c.m[k] = d
}

// protect wraps an API handler: the caller must be signed in (401, or 503
// while the provider is needed and unreachable), have a role on some app
// (else 403), and carry the CSRF token for a change made with a session
// cookie (else 403).
func (s *Server) protect(h func(http.ResponseWriter, *http.Request, *caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		if c.sess != nil && unsafeMethod(r.Method) && !c.sess.csrfOK(r.Header.Get("X-CSRF-Token")) {
			writeError(w, http.StatusForbidden, "missing or wrong CSRF token: send the page's token in the X-CSRF-Token header")
			return
		}
		if c.g.none() {
			writeError(w, http.StatusForbidden, "no role: none of your groups has a role in admin.auth.roles")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r, c)
	})
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// authenticate finds the caller of r from its bearer token or its session
// cookie. When it returns false it has answered: 401 with
// WWW-Authenticate: Bearer (or, for a browser, a redirect to sign-in),
// 403 for a groups claim of the wrong type, 503 when the provider is
// needed and unreachable.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*caller, bool) {
	pol := s.policy.Load()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			s.unauthorized(w, r, "invalid_request", "want Authorization: Bearer <ID token>")
			return nil, false
		}
		d, err := s.bearer(r.Context(), tok, pol)
		if err != nil {
			s.authFailed(w, r, err)
			return nil, false
		}
		return &caller{subject: d.subject, name: d.name, g: pol.roles.grantsFor(d.groups), until: d.end(pol)}, true
	}
	sess := s.sessions.find(r, s.cookie, s.now())
	if sess == nil {
		s.unauthorized(w, r, "", "")
		return nil, false
	}
	d, err := s.recheck(r.Context(), sess, pol)
	if err != nil {
		if !errors.Is(err, errProviderDown) {
			s.sessions.drop(sess)
		}
		s.authFailed(w, r, err)
		return nil, false
	}
	return &caller{subject: d.subject, name: d.name, g: pol.roles.grantsFor(d.groups), sess: sess, until: d.end(pol)}, true
}

// Reasons a bearer token is refused, as error_description says them.
var (
	errTokenExpired  = errors.New("the token has expired")
	errTokenTooOld   = errors.New("the token was issued longer ago than admin.auth.authz_ttl: get a new one")
	errTokenInvalid  = errors.New("the token is not valid: not signed by the provider, not from its issuer, or not for this client")
	errSessionEnded  = errors.New("the session has ended: sign in again")
	errTokenNoIssued = errors.New("the token has no iat (issued at) claim")
	errTokenFuture   = errors.New("the token's iat (issued at) is in the future: check the clocks of the provider and the router")
)

// maxSkew is how far in the future a token's iat may be: the clocks of
// the provider and the router may differ a little.
const maxSkew = time.Minute

// bearer returns the decision on a bearer ID token: from the cache, or
// verified (signature, issuer, aud holding client_id, expiry) and issued
// less than authz_ttl ago.
func (s *Server) bearer(ctx context.Context, tok string, pol *policy) (decision, error) {
	key := sha256.Sum256([]byte(tok))
	now := s.now()
	if d, ok := s.bearers.get(key, now); ok && d.holds(now, pol) {
		return d, nil
	}
	id, err := s.pv.verify(ctx, tok, pol.groupsClaim)
	if err != nil {
		return decision{}, err
	}
	switch {
	case id.issued.IsZero():
		return decision{}, errTokenNoIssued
	case now.Sub(id.issued) >= pol.ttl:
		return decision{}, errTokenTooOld
	case id.issued.Sub(now) > maxSkew:
		return decision{}, errTokenFuture
	}
	d := decision{subject: id.subject, name: id.name, groups: id.groups, since: id.issued,
		until: earliest(id.issued.Add(pol.ttl), id.expires, now.Add(pol.ttl))}
	s.bearers.put(key, d, now)
	return d, nil
}

// earliest returns the earliest of ts, ignoring zero times.
func earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}

// recheck returns the session's decision, checking it with the provider
// (a refresh grant and its new ID token) when it is older than authz_ttl
// or its ID token expired.
func (s *Server) recheck(ctx context.Context, sess *session, pol *policy) (decision, error) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	now := s.now()
	if sess.d.holds(now, pol) {
		return sess.d, nil
	}
	if sess.refresh == "" {
		return decision{}, errSessionEnded
	}
	_, _, oc, err := s.pv.get(ctx)
	if err != nil {
		return decision{}, err
	}
	tok, err := oc.TokenSource(s.pv.ctx(ctx), &oauth2.Token{RefreshToken: sess.refresh, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		if errors.Is(err, errProviderDown) {
			return decision{}, err
		}
		s.log.Info("admin session ended: the provider refused its refresh token",
			zap.String(logging.KeySubject, sess.d.subject), zap.Error(err))
		return decision{}, errSessionEnded
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return decision{}, errSessionEnded
	}
	id, err := s.pv.verify(ctx, raw, pol.groupsClaim)
	if err != nil {
		return decision{}, err
	}
	if id.subject != sess.d.subject {
		return decision{}, errSessionEnded
	}
	sess.d = decision{subject: id.subject, name: cmpOrString(id.name, sess.d.name), groups: id.groups,
		since: now, until: earliest(now.Add(pol.ttl), id.expires)}
	if tok.RefreshToken != "" {
		sess.refresh = tok.RefreshToken
	}
	return sess.d, nil
}

func cmpOrString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// authFailed answers a failed authentication: 503 while the provider is
// unreachable, 403 for a groups claim of the wrong type, else 401.
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, err error) {
	var gt *groupsTypeError
	var expired *oidc.TokenExpiredError
	switch {
	case errors.Is(err, errProviderDown):
		if err != errProviderDown { // a lookup that failed now, not one skipped until the next retry
			s.log.Warn("admin: the identity provider is unreachable", zap.Error(err))
		}
		writeError(w, http.StatusServiceUnavailable, "the identity provider is unreachable: try again later")
	case errors.As(err, &gt):
		writeError(w, http.StatusForbidden, gt.Error()+": the provider must send the groups as a list of strings")
	case errors.As(err, &expired):
		s.unauthorized(w, r, "invalid_token", errTokenExpired.Error())
	case errors.Is(err, errTokenTooOld), errors.Is(err, errTokenNoIssued), errors.Is(err, errTokenFuture), errors.Is(err, errSessionEnded):
		s.unauthorized(w, r, "invalid_token", err.Error())
	default:
		s.log.Debug("admin: token refused", zap.Error(err))
		s.unauthorized(w, r, "invalid_token", errTokenInvalid.Error())
	}
}

// unauthorized answers 401 with WWW-Authenticate: Bearer (RFC 6750
// section 3), or redirects a browser that asked for a page to sign-in.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, code, desc string) {
	if r.Method == http.MethodGet && r.Header.Get("Authorization") == "" && strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/auth/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusFound)
		return
	}
	v := `Bearer realm="spacerouter"`
	if code != "" {
		v += `, error="` + code + `", error_description="` + desc + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	msg := "sign in: send Authorization: Bearer <ID token>, or sign in at /auth/login"
	if desc != "" {
		msg = desc
	}
	writeError(w, http.StatusUnauthorized, msg)
}

// csrfOK reports whether tok is the session's CSRF token.
func (sess *session) csrfOK(tok string) bool {
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(sess.csrf)) == 1
}
