package admin

import (
	"embed"
	"html"
	"io/fs"
	"net/http"
	"strings"
)

// static holds the dashboard: one page, its script and its style, served
// by the router itself (no CDN, no external asset, no build step).
//
//go:embed static
var static embed.FS

// staticFiles serves /static/ from the embedded files. They hold no data
// (the page reads everything through the API), so they need no sign-in.
func staticFiles() http.Handler {
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
}

// setPageHeaders sets the headers of the dashboard's responses: only its
// own scripts and styles, never in a frame.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// handleDashboard serves the page at / to a signed-in caller with a role,
// with the session's CSRF token in a meta element for the page's changes.
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if c.g.none() {
		textError(w, http.StatusForbidden, "Signed in as "+c.who()+", but none of your groups has a role in admin.auth.roles.")
		return
	}
	page, err := static.ReadFile("static/index.html")
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	csrf := ""
	if c.sess != nil {
		csrf = c.sess.csrf
	}
	out := strings.NewReplacer("{{CSRF}}", html.EscapeString(csrf), "{{USER}}", html.EscapeString(c.who())).Replace(string(page))
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(out))
}
