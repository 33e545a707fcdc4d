package router

import (
	"bytes"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/router/h1"
)

// route finds the app of the request (SPEC.md 4.3) and answers what needs
// no dyno: CONNECT, an unknown host, a misdirected request, maintenance,
// a crashed app.
func (ex *exchange) route() error {
	req, sc := ex.req, ex.sc
	l := &ex.line
	l.Method, l.Path = req.Method, req.Target
	ex.closeAfter = ex.closeAfter || req.Close
	host, hasHost := req.Host, req.HasHost
	ex.target = req.Target
	if auth, path, ok := absoluteForm(req.Target, req.Method); ok {
		// RFC 9112 section 3.2.2: the target's authority wins over Host.
		host, hasHost, ex.hostAuth, ex.target = auth, true, auth, path
	}
	if hasHost {
		sc.host = normalizeHost(sc.host[:0], host)
	}
	ex.buildXFF()
	if h := ex.rt.hookHandle; h != nil {
		h()
	}
	if string(req.Method) == "CONNECT" {
		return &errcodes.Error{Status: 405}
	}
	sni := ex.cl.sni()
	if !hasHost {
		if len(sni) == 0 {
			// HTTP/1.0 without Host on plain HTTP: nothing to route by.
			return errcodes.New(errcodes.BadHeader, errNoHost)
		}
		sc.host = append(sc.host[:0], sni...)
	}
	a := ex.sp.lookup(sc.host)
	if len(sni) > 0 && (a == nil || ex.sp.lookup(sni) != a) {
		// On TLS the Host must be a domain of the SNI name's app.
		return errcodes.New(errcodes.MisdirectedRequest, nil)
	}
	if a == nil {
		return &errcodes.Error{Status: 404}
	}
	ex.app, ex.am = a, a.m
	ex.buildRequestID()
	if err := ex.admitClient(); err != nil {
		return err
	}
	if a.inMaintenance() {
		return errcodes.New(errcodes.MaintenanceMode, nil)
	}
	if len(a.up) == 0 {
		return errcodes.New(errcodes.AppCrashed, nil)
	}
	return nil
}

// absoluteForm splits an absolute-form target (http://host/path) into its
// authority and the origin form the dyno is sent (RFC 9112 sections 3.2.2
// and 3.2.4: an empty path is "/", or "*" for OPTIONS).
func absoluteForm(target, method []byte) (auth, path []byte, ok bool) {
	rest, ok := cutSchemeFold(target)
	if !ok {
		return nil, nil, false
	}
	end := len(rest)
	if i := bytes.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	auth, path = rest[:end], rest[end:]
	if i := bytes.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:] // userinfo is not part of the host (RFC 9110 section 4.2.4)
	}
	switch {
	case len(path) == 0 && string(method) == "OPTIONS":
		path = asterisk
	case len(path) == 0 || path[0] != '/':
		// "http://h?q": the origin form needs its slash.
		path = append(append(make([]byte, 0, len(path)+1), '/'), path...)
	}
	return auth, path, len(auth) > 0
}

var asterisk = []byte("*")

// cutSchemeFold returns what follows "http://" or "https://" (any case).
func cutSchemeFold(t []byte) ([]byte, bool) {
	switch {
	case len(t) > 7 && h1.HasPrefixFold(t, "http://"):
		return t[7:], true
	case len(t) > 8 && h1.HasPrefixFold(t, "https://"):
		return t[8:], true
	}
	return nil, false
}

// buildXFF sets sc.xff: the client's X-Forwarded-For values, then the
// client IP, joined with ", " (SPEC.md 4.7).
func (ex *exchange) buildXFF() {
	x := ex.sc.xff[:0]
	for i := range ex.req.Fields {
		f := &ex.req.Fields[i]
		if len(f.Value) > 0 && f.Known == h1.KnownXForwardedFor {
			x = append(x, f.Value...)
			x = append(x, ", "...)
		}
	}
	ex.sc.xff = append(x, ex.cl.ip()...)
}

// buildRequestID sets sc.rid: the client's X-Request-Id when it is 20–200
// bytes of A-Z a-z 0-9 + = / -, else a new UUID v4.
func (ex *exchange) buildRequestID() {
	sc := ex.sc
	for i := range ex.req.Fields {
		f := &ex.req.Fields[i]
		if f.Known == h1.KnownXRequestID {
			if validRequestID(f.Value) {
				sc.rid = append(sc.rid[:0], f.Value...)
				return
			}
			break
		}
	}
	sc.rid = appendUUID(sc.rid[:0], sc.rng.Uint64(), sc.rng.Uint64())
}
