// Package view holds the JSON shapes of the admin API (SPEC.md section 13)
// and the errors a backend answers with. It is the contract between
// package admin, which serves the API, and the router, which knows the
// apps, dynos, certificates, connections and router lines: the router can
// implement admin.Backend with these types without importing package
// admin (and its OpenID Connect client).
//
// Field names are snake_case, as the API writes them. Times are RFC 3339
// in UTC; a zero time is left out.
package view

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
)

// App is one app as GET /api/apps lists it.
type App struct {
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
	// Dynos are the app's dynos in config order, with their state.
	Dynos []Dyno `json:"dynos"`
	// Maintenance is whether maintenance mode is in force now: the
	// override when there is one, else the file's apps[].maintenance.
	Maintenance bool `json:"maintenance"`
	// MaintenanceOverride is the switch set through the API and kept in
	// state (SPEC.md section 13); nil when there is none.
	MaintenanceOverride *bool `json:"maintenance_override"`
	// MTLSMode is off, optional or require (SPEC.md section 11.1).
	MTLSMode string `json:"mtls_mode"`
	// TLSSource is where the app's certificates come from: TLSFiles,
	// TLSACME or TLSNone.
	TLSSource string `json:"tls_source"`
	// Traffic counts the app's requests of the last five minutes.
	Traffic Traffic `json:"last_5m"`
	// Role is the caller's role on the app (admin, owner or
	// collaborator). Package admin sets it; a backend leaves it empty.
	Role string `json:"role,omitempty"`
}

// TLS sources of App.TLSSource.
const (
	TLSFiles = "files" // apps[].tls lists certificate files
	TLSACME  = "acme"  // tls: auto
	TLSNone  = "none"  // no certificate: the https listener refuses the app
)

// Dyno is one dyno of an app.
type Dyno struct {
	Name string `json:"name"`
	// Address is the dyno's host:port. It is shown to whoever may see the
	// app: operators of the app need it to find the dyno.
	Address string `json:"address"`
	State   string `json:"state"` // up, crashed or starting
}

// Traffic counts an app's requests over the last five minutes, by the
// minute, so the dashboard can show counts and rates.
type Traffic struct {
	// WindowSeconds is the time the counts cover: from the start of the
	// oldest of the five minutes (or from when counting began, if later)
	// to now, so 240 to 300 once the router has run five minutes (rates
	// divide by it).
	WindowSeconds int `json:"window_seconds"`
	// Requests is every request of the window, router-made answers
	// included.
	Requests uint64 `json:"requests"`
	// PerMinute is the requests of each of the last five minutes, oldest
	// first; the last is the minute in progress.
	PerMinute []uint64 `json:"per_minute"`
	// Statuses counts by status class: "1xx" to "5xx".
	Statuses map[string]uint64 `json:"statuses"`
	// Codes counts router lines with an H code, by code ("H12"); codes
	// not seen in the window are left out.
	Codes map[string]uint64 `json:"codes"`
}

// AppDetail is one app as GET /api/apps/{app} shows it: the App and its
// certificates.
type AppDetail struct {
	App
	// Certificates are the served chains of a tls: [files] app, one per
	// entry (staged ones too), or the ACME status of each domain of a
	// tls: auto app (SPEC.md section 12.1).
	Certificates []Certificate `json:"certificates"`
}

// Certificate is one certificate an app serves, or will serve.
type Certificate struct {
	// Source is "file" or "acme".
	Source string `json:"source"`
	// Domain is, for ACME, the domain the status is about.
	Domain string `json:"domain,omitempty"`
	// Names are the leaf's DNS names.
	Names []string `json:"names,omitempty"`
	// State is, for ACME, waiting, in_progress, ok or failing; for a file,
	// ok, staged (its serve_from is to come), superseded (a chain of the
	// same key type with a later serve_from is served instead) or
	// expired.
	State string `json:"state"`
	// LastError is the last ACME error of a failing domain.
	LastError string `json:"last_error,omitempty"`
	Serial    string `json:"serial,omitempty"` // lower-case hex
	// Issuer is the issuing certificate's subject (RFC 4514).
	Issuer    string    `json:"issuer,omitempty"`
	KeyType   string    `json:"key_type,omitempty"` // RSA or ECDSA
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// ServeFrom is the staged chain's serve_from (SPEC.md section 12.3).
	ServeFrom time.Time `json:"serve_from,omitzero"`
	// VerifyFull is, for ACME, whether the chain verifies with the system
	// (or acme.trusted_roots) pool and the domain's name.
	VerifyFull *bool `json:"verify_full,omitempty"`
}

// Client is one issued client certificate (SPEC.md section 11.3).
type Client struct {
	ID       string    `json:"id"` // 16 lower-case hex digits
	App      string    `json:"app"`
	Name     string    `json:"name"`   // the certificate's CN
	Serial   string    `json:"serial"` // lower-case hex
	Created  time.Time `json:"created"`
	NotAfter time.Time `json:"not_after"`
	// Status is ready, expiring, expired or revoked.
	Status      string    `json:"status"`
	SuccessorOf string    `json:"successor_of,omitempty"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
}

// File is one file of a client certificate's download (SPEC.md section
// 11.3: client.crt, client.key, client.pk8, root.crt); the admin API
// writes them into a tar.
type File struct {
	Name string      // a base name, no directory
	Mode fs.FileMode // 0644, or 0600 for the key files
	Data []byte
}

// TLSConnection is one open client connection that uses TLS (SPEC.md
// section 12.5). It mirrors the router's connection view field for field,
// so the router fills it with a copy.
type TLSConnection struct {
	RemoteAddr string `json:"remote_addr"`
	// App is the app the SNI name chose ("" when no app has it any more
	// after a reload).
	App         string `json:"app"`
	SNI         string `json:"sni"`
	TLSVersion  string `json:"tls_version"`  // tls1.2, tls1.3
	CipherSuite string `json:"cipher_suite"` // IANA name
	ALPN        string `json:"alpn"`         // h2, http/1.1 or ""
	// Resumed is a session resumed from a ticket.
	Resumed bool `json:"resumed"`
	// Served is the certificate the router served on the connection.
	Served ServedCertificate `json:"served_certificate"`
	// Client is the client certificate; nil when none was presented.
	Client     *ClientCertificate `json:"client_certificate"`
	OpenedAt   time.Time          `json:"opened_at"`
	AgeSeconds int64              `json:"age_seconds"`
	// Requests counts the requests read on the connection (HTTP/2: its
	// streams).
	Requests uint64 `json:"requests"`
}

// ServedCertificate is a served chain's leaf as the connection view names
// it.
type ServedCertificate struct {
	Serial   string    `json:"serial"` // lower-case hex
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
	Source   string    `json:"source"` // file, acme
}

// ClientCertificate is a client certificate as the connection view shows
// it.
type ClientCertificate struct {
	Subject string `json:"subject"` // RFC 4514
	Serial  string `json:"serial"`  // lower-case hex
	Issuer  string `json:"issuer"`  // the leaf's issuer, RFC 4514
	// CA is the trusted CA the chain ends in (RFC 4514) and CASHA256 its
	// fingerprint ("" while no request judged it, or no trusted CA).
	CA       string `json:"ca"`
	CASHA256 string `json:"ca_sha256"`
	// Status is "ok", the cause of a refusal (unknown_ca, retired_ca,
	// revoked, expired, bad_usage) or "unchecked".
	Status string `json:"status"`
}

// TLSFilter selects connections of the view; an empty field selects all.
type TLSFilter struct {
	App string // the app's name
	// Serial is the served certificate's serial, or the client
	// certificate's, in hex (case and colons do not matter).
	Serial string
	// CA names the client certificate's CA: its SHA-256 fingerprint (hex,
	// at least 16 digits of it), its subject or its common name.
	CA string
}

// TLSSummary counts open TLS connections by served certificate and by
// client CA (SPEC.md section 12.5).
type TLSSummary struct {
	Connections int `json:"connections"`
	// ByServed counts by served certificate (app, serial), most used
	// first.
	ByServed []ServedCount `json:"by_served_certificate"`
	// ByClientCA counts the connections with a client certificate by the
	// CA its chain ends in (unchecked ones by their issuer, CA ""), most
	// used first.
	ByClientCA []CACount `json:"by_client_ca"`
	// WithoutClientCert counts the connections that presented none.
	WithoutClientCert int `json:"without_client_certificate"`
}

// ServedCount is the number of connections of one served certificate.
type ServedCount struct {
	App string `json:"app"`
	ServedCertificate
	Connections int `json:"connections"`
}

// CACount is the number of connections whose client certificate chains to
// one CA.
type CACount struct {
	CA       string `json:"ca"`
	CASHA256 string `json:"ca_sha256"`
	// Issuer is the client certificates' issuer when no request judged
	// them yet (CA ""), else the CA.
	Issuer      string `json:"issuer"`
	Connections int    `json:"connections"`
}

// Summarize counts conns for a TLSSummary. Package admin summarizes only
// the connections a caller may see, so the summary of a collaborator
// covers its apps alone.
func Summarize(conns []TLSConnection) TLSSummary {
	s := TLSSummary{Connections: len(conns), ByServed: []ServedCount{}, ByClientCA: []CACount{}}
	served := map[[2]string]int{} // index in s.ByServed by app and serial
	cas := map[[2]string]int{}    // index in s.ByClientCA by fingerprint and issuer
	for i := range conns {
		c := &conns[i]
		k := [2]string{c.App, c.Served.Serial}
		if j, ok := served[k]; ok {
			s.ByServed[j].Connections++
		} else {
			served[k] = len(s.ByServed)
			s.ByServed = append(s.ByServed, ServedCount{App: c.App, ServedCertificate: c.Served, Connections: 1})
		}
		if c.Client == nil {
			s.WithoutClientCert++
			continue
		}
		issuer := c.Client.Issuer
		if c.Client.CA != "" {
			issuer = c.Client.CA
		}
		k = [2]string{c.Client.CASHA256, issuer}
		if j, ok := cas[k]; ok {
			s.ByClientCA[j].Connections++
		} else {
			cas[k] = len(s.ByClientCA)
			s.ByClientCA = append(s.ByClientCA, CACount{CA: c.Client.CA, CASHA256: c.Client.CASHA256, Issuer: issuer, Connections: 1})
		}
	}
	slices.SortStableFunc(s.ByServed, func(a, b ServedCount) int {
		return cmp.Or(b.Connections-a.Connections, strings.Compare(a.App, b.App), strings.Compare(a.Serial, b.Serial))
	})
	slices.SortStableFunc(s.ByClientCA, func(a, b CACount) int {
		return cmp.Or(b.Connections-a.Connections, strings.Compare(a.Issuer, b.Issuer), strings.Compare(a.CASHA256, b.CASHA256))
	})
	return s
}

// Subscription is a live feed of one app's router lines. A backend never
// blocks the request path on it: when the viewer falls behind, lines are
// dropped and counted.
type Subscription interface {
	// Lines delivers each router line (without its newline). It is closed
	// by Close.
	Lines() <-chan string
	// Dropped returns how many lines were dropped so far because the
	// viewer fell behind.
	Dropped() uint64
	// Close ends the subscription; it may be called more than once.
	Close()
}

// The kinds of answer a backend gives with an *Error.
var (
	// ErrNotFound: no such app or client certificate (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the state forbids it, such as the download of a revoked
	// certificate or an issue without a space CA (409).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a bad value from the caller, such as a certificate name
	// (400).
	ErrInvalid = errors.New("invalid")
)

// Error is a backend's answer to a caller: Kind is ErrNotFound,
// ErrConflict or ErrInvalid, and Msg says why in words fit for the
// caller: no file paths, no internals. Any other error from a backend is
// answered 500 with no text and logged.
type Error struct {
	Kind error
	Msg  string
}

// Error returns Msg.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns Kind, so errors.Is(err, ErrNotFound) works.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an *Error of kind with a formatted message.
func Errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Router is one router of a shared space as GET /api/routers lists it:
// its routers/<id> value (SPEC.md section 14).
type Router struct {
	ID string `json:"id"`
	// Revision is the etcd revision of the config it serves.
	Revision int64 `json:"revision"`
	// Refused are the keys it does not apply, and why.
	Refused []Refusal `json:"refused"`
}

// Refusal is one key a router refuses.
type Refusal struct {
	Key     string `json:"key"`
	Problem string `json:"problem"`
}
