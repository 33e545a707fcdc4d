package admin

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/admin/view"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// Names the API accepts in paths; anything else is answered 404 like an
// unknown app.
var (
	appName  = regexp.MustCompile(`^[a-z][a-z0-9-]{2,29}$`) // SPEC.md section 2
	clientID = regexp.MustCompile(`^[0-9a-f]{16}$`)         // SPEC.md section 11.3
)

// maxLines is how many recent router lines GET /api/lines answers.
const maxLines = 1000

// visibleApp returns the {app} of r when the caller has a role on it;
// otherwise it answers 404, exactly as for an app that does not exist.
func visibleApp(w http.ResponseWriter, app string, c *caller) (string, bool) {
	if !appName.MatchString(app) || c.g.role(app) == "" {
		writeError(w, http.StatusNotFound, "not found")
		return "", false
	}
	return app, true
}

// ownerApp is visibleApp for a change: a collaborator gets 403.
func ownerApp(w http.ResponseWriter, app string, c *caller) (string, bool) {
	app, ok := visibleApp(w, app, c)
	if !ok {
		return "", false
	}
	if !c.g.may(app, config.RoleOwner) {
		writeError(w, http.StatusForbidden, "forbidden: your role on "+app+" is "+c.g.role(app)+", and this needs owner")
		return "", false
	}
	return app, true
}

// backendError answers an error of the Backend: its kind and message, or
// 500 with no text (and the error in the log).
func (s *Server) backendError(w http.ResponseWriter, r *http.Request, err error) {
	var e *view.Error
	switch {
	case errors.Is(err, view.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.As(err, &e) && errors.Is(e, view.ErrConflict):
		writeError(w, http.StatusConflict, e.Msg)
	case errors.As(err, &e) && errors.Is(e, view.ErrInvalid):
		writeError(w, http.StatusBadRequest, e.Msg)
	default:
		s.log.Error("admin API: backend failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// audit writes the one line of a change (SPEC.md section 13).
func (s *Server) audit(c *caller, app, action string, fields ...zap.Field) {
	s.log.Info("admin change", append([]zap.Field{zap.String(logging.KeySubject, c.subject), zap.String(logging.KeyUser, c.name),
		zap.String(logging.KeyRole, c.g.role(app)), zap.String(logging.KeyApp, app), zap.String(logging.KeyAction, action)}, fields...)...)
}

// readBody decodes the JSON object of r's body into fields, which name
// the keys it may have; an unknown key, bad JSON or a body over maxBody is
// answered (400 or 413).
func readBody(w http.ResponseWriter, r *http.Request, fields map[string]*json.RawMessage) bool {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large: at most 4096 bytes")
		return false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the request body failed")
		return false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		writeError(w, http.StatusBadRequest, "the body is not a JSON object")
		return false
	}
	for k, v := range obj {
		dst, ok := fields[k]
		if !ok {
			writeError(w, http.StatusBadRequest, "unknown key "+jsonQuote(k)+" in the body")
			return false
		}
		*dst = v
	}
	return true
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// apiApps is GET /api/apps: the apps the caller may see.
func (s *Server) apiApps(w http.ResponseWriter, _ *http.Request, c *caller) {
	out := []view.App{}
	for _, a := range s.backend.Apps() {
		if role := c.g.role(a.Name); role != "" {
			a.Role = role
			out = append(out, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiApp is GET /api/apps/{app}.
func (s *Server) apiApp(w http.ResponseWriter, r *http.Request, c *caller) {
	app, ok := visibleApp(w, r.PathValue("app"), c)
	if !ok {
		return
	}
	d, err := s.backend.App(app)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	d.Role = c.g.role(app)
	writeJSON(w, http.StatusOK, d)
}

// apiMaintenance is PUT /api/apps/{app}/maintenance {"maintenance":
// true|false|null}; null clears the override.
func (s *Server) apiMaintenance(w http.ResponseWriter, r *http.Request, c *caller) {
	app, ok := ownerApp(w, r.PathValue("app"), c)
	if !ok {
		return
	}
	var raw json.RawMessage
	if !readBody(w, r, map[string]*json.RawMessage{"maintenance": &raw}) {
		return
	}
	var on *bool
	if raw == nil || json.Unmarshal(raw, &on) != nil {
		writeError(w, http.StatusBadRequest, `want {"maintenance": true}, false, or null to go back to the config's value`)
		return
	}
	a, err := s.backend.SetMaintenance(app, on, c.who())
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	action := "maintenance.clear"
	if on != nil && *on {
		action = "maintenance.on"
	} else if on != nil {
		action = "maintenance.off"
	}
	s.audit(c, app, action)
	a.Role = c.g.role(app)
	writeJSON(w, http.StatusOK, a)
}

// who names the caller for the backend's records.
func (c *caller) who() string {
	if c.name != "" {
		return c.name + " (" + c.subject + ")"
	}
	return c.subject
}

// apiClients is GET /api/apps/{app}/clients.
func (s *Server) apiClients(w http.ResponseWriter, r *http.Request, c *caller) {
	app, ok := visibleApp(w, r.PathValue("app"), c)
	if !ok {
		return
	}
	cs, err := s.backend.Clients(app)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	if cs == nil {
		cs = []view.Client{}
	}
	writeJSON(w, http.StatusOK, cs)
}

// apiIssue is POST /api/apps/{app}/clients {"name": "laptop"}: 201 with
// the new certificate (its id among it).
func (s *Server) apiIssue(w http.ResponseWriter, r *http.Request, c *caller) {
	app, ok := ownerApp(w, r.PathValue("app"), c)
	if !ok {
		return
	}
	var raw json.RawMessage
	if !readBody(w, r, map[string]*json.RawMessage{"name": &raw}) {
		return
	}
	var name string
	if raw != nil && json.Unmarshal(raw, &name) != nil {
		writeError(w, http.StatusBadRequest, `want {"name": "laptop"}: the name is a string`)
		return
	}
	cl, err := s.backend.IssueClient(app, name)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	s.audit(c, app, "client.issue", zap.String(logging.KeyCertID, cl.ID))
	writeJSON(w, http.StatusCreated, cl)
}

// ownClient checks that id names a certificate of app (answering 404 if
// not), so no id of another app is ever passed on.
func (s *Server) ownClient(w http.ResponseWriter, r *http.Request, app, id string) bool {
	if !clientID.MatchString(id) {
		writeError(w, http.StatusNotFound, "not found")
		return false
	}
	cs, err := s.backend.Clients(app)
	if err != nil {
		s.backendError(w, r, err)
		return false
	}
	for _, cl := range cs {
		if cl.ID == id && cl.App == app {
			return true
		}
	}
	writeError(w, http.StatusNotFound, "not found")
	return false
}

// apiDownload is GET /api/apps/{app}/clients/{id}/download: a tar of the
// files of SPEC.md section 11.3.
func (s *Server) apiDownload(w http.ResponseWriter, r *http.Request, c *caller) {
	app, ok := ownerApp(w, r.PathValue("app"), c)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if !s.ownClient(w, r, app, id) {
		return
	}
	files, err := s.backend.DownloadClient(app, id)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := s.now()
	for _, f := range files {
		name := f.Name
		if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
			s.backendError(w, r, errors.New("download: a file name with a directory: "+name))
			return
		}
		hdr := &tar.Header{Name: name, Mode: int64(f.Mode.Perm()), Size: int64(len(f.Data)), ModTime: now.Truncate(time.Second), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			s.backendError(w, r, err)
			return
		}
		tw.Write(f.Data)
	}
	if err := tw.Close(); err != nil {
		s.backendError(w, r, err)
		return
	}
	s.audit(c, app, "client.download", zap.String(logging.KeyCertID, id))
	h := w.Header()
	h.Set("Content-Type", "application/x-tar")
	h.Set("Content-Disposition", `attachment; filename="`+app+"-"+id+`.tar"`)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// apiRevoke is DELETE /api/apps/{app}/clients/{id}: 200 with the revoked
// certificate.
func (s *Server) apiRevoke(w http.ResponseWriter, r *http.Request, c *caller) {
	app, ok := ownerApp(w, r.PathValue("app"), c)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if !s.ownClient(w, r, app, id) {
		return
	}
	cl, err := s.backend.RevokeClient(app, id)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	s.audit(c, app, "client.revoke", zap.String(logging.KeyCertID, id))
	writeJSON(w, http.StatusOK, cl)
}

// tlsConnections returns the connections of r's filter that the caller
// may see; false when it answered 404 for an app filter it may not see.
func (s *Server) tlsConnections(w http.ResponseWriter, r *http.Request, c *caller) ([]view.TLSConnection, bool) {
	q := r.URL.Query()
	f := view.TLSFilter{App: q.Get("app"), Serial: q.Get("serial"), CA: q.Get("ca")}
	if f.App != "" {
		if _, ok := visibleApp(w, f.App, c); !ok {
			return nil, false
		}
	}
	out := []view.TLSConnection{}
	for _, tc := range s.backend.TLSConnections(f) {
		if c.g.admin || (tc.App != "" && c.g.role(tc.App) != "") {
			out = append(out, tc)
		}
	}
	return out, true
}

// apiTLSConnections is GET /api/tls/connections?app=&serial=&ca=.
func (s *Server) apiTLSConnections(w http.ResponseWriter, r *http.Request, c *caller) {
	if conns, ok := s.tlsConnections(w, r, c); ok {
		writeJSON(w, http.StatusOK, conns)
	}
}

// apiTLSSummary is GET /api/tls/summary (of the caller's apps).
func (s *Server) apiTLSSummary(w http.ResponseWriter, r *http.Request, c *caller) {
	if conns, ok := s.tlsConnections(w, r, c); ok {
		writeJSON(w, http.StatusOK, view.Summarize(conns))
	}
}

// apiLines is GET /api/lines?app=: the last 1,000 lines as a JSON list,
// or with Accept: text/event-stream a live stream.
func (s *Server) apiLines(w http.ResponseWriter, r *http.Request, c *caller) {
	name := r.URL.Query().Get("app")
	if name == "" {
		writeError(w, http.StatusBadRequest, "want ?app=NAME")
		return
	}
	app, ok := visibleApp(w, name, c)
	if !ok {
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		s.stream(w, r, c, app)
		return
	}
	lines, err := s.backend.RecentLines(app, maxLines)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	if lines == nil {
		lines = []string{}
	}
	writeJSON(w, http.StatusOK, lines)
}

// apiRouters is GET /api/routers (role admin): every router's
// routers/<id> value of a shared space.
func (s *Server) apiRouters(w http.ResponseWriter, r *http.Request, c *caller) {
	if !c.g.admin {
		writeError(w, http.StatusForbidden, "forbidden: GET /api/routers needs role admin")
		return
	}
	rb, ok := s.backend.(RoutersBackend)
	if !ok {
		writeError(w, http.StatusConflict, "this router serves a space from its file, not from a store: there are no routers to list")
		return
	}
	list, err := rb.Routers(r.Context())
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	if list == nil {
		list = []view.Router{}
	}
	writeJSON(w, http.StatusOK, list)
}
