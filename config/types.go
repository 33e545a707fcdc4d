package config

import (
	"net/netip"
	"time"
)

// Config is one validated space: the whole config file with every default
// applied and every per-app override merged. It is read-only once Load
// returns it.
type Config struct {
	// File is the path the config was read from ("" for a built-in config).
	File string
	// Space is the space name (key "space"); free text, may be empty.
	Space     string
	Listen    Listen
	Log       Log
	Timeouts  Timeouts
	Limits    Limits
	Buffering Buffering
	// SpaceCA is the space's certificate authority (key space_ca, SPEC.md
	// section 11.3); nil when the file has none.
	SpaceCA *SpaceCA
	// ACME is where apps with tls: auto get their certificates (key acme,
	// SPEC.md section 12.1); nil when the file has none.
	ACME *ACME
	// Admin is the admin API and dashboard (key admin, SPEC.md section
	// 13); nil when the file has none: the admin listener then serves
	// /healthz and /metrics only.
	Admin *Admin
	// Store is where the apps and the space's settings live when routers
	// share them (key store, SPEC.md section 14); nil when the file has
	// none. A file with store has no apps: BuildShared makes the Config
	// the router serves from the file's and the store's keys.
	Store *Store
	Apps  []App

	// warnings are the non-fatal notes found by Parse; see Warnings.
	warnings []Problem
}

// Listen holds the listener addresses; "" means that listener is off. At
// least one of HTTP and HTTPS is set.
type Listen struct {
	HTTP  string // host:port of the plain HTTP listener
	HTTPS string // host:port of the TLS listener
	Admin string // host:port of the admin listener (/metrics, /healthz)
}

// Log says where router lines go and how the operational log is set.
type Log struct {
	// Router is "stdout" (default), "stderr" or a file path (appended to).
	Router string
	// Source is the token written before the fields; default "heroku[router]".
	Source string
	// Level is the zap level: debug, info (default), warn or error.
	Level string
	// Redact lists query parameter names whose values router lines write
	// as REDACTED. Empty means none.
	Redact []string
}

// Timeouts are the router's time limits. Every field is > 0 after Load.
type Timeouts struct {
	Connect       time.Duration // dyno connect -> H19; default 5s
	Response      time.Duration // request sent -> response headers -> H12; default 30s
	Idle          time.Duration // no dyno byte while relaying a body -> H15; default 55s
	Client        time.Duration // no client byte mid-request -> H28; default 55s
	Keepalive     time.Duration // idle client keep-alive connection closed; default 60s
	DynoKeepalive time.Duration // idle pooled dyno connection closed; default 90s
	Shutdown      time.Duration // drain limit on SIGTERM; default 30s
}

// Limits are the request and response size limits and the connection and
// request limits. Every field is > 0 after Load, except MinTransferRate,
// which is 0 when the file turns the check off (an omitted key takes the
// default; only an explicit 0 means off).
type Limits struct {
	RequestLineBytes   int // request/status line -> 414 (request) or 502 (response), H25; default 8192
	MethodBytes        int // default 127
	HeaderNameBytes    int // default 1000
	HeaderBytes        int // one header field (name: value) -> H25 oversized header; default 524288
	CookieBytes        int // one Cookie / Set-Cookie field -> H25 oversized cookies; default 524288
	HeadersTotalBytes  int // all header fields of one message; default 1048576
	HeaderCount        int // number of header fields; default 1000
	ConcurrencyPerDyno int // requests in flight per up dyno -> H11; default 200

	// Connections is the most client connections open at once, plain and
	// TLS together (admin connections not counted); beyond it a new
	// connection is closed at once and counted, and the listener never
	// stalls. Default 10000.
	Connections int
	// ConnectionsPerClient is the most client connections open at once
	// from one client IP; when Connections is reached, idle keep-alive
	// connections are closed first. Default 1000.
	ConnectionsPerClient int
	// RequestsPerClient is the most requests in flight from one client IP
	// to one app; one more -> H11. Default 100.
	RequestsPerClient int
	// MinTransferRate is in bytes per second, averaged over each 10 s while
	// request body bytes are still due (slower -> H28) or response bytes
	// wait for a client that does not take them, HTTP/2 flow control
	// included (slower -> H27); an idle stream (SSE, long poll) is never
	// cut. Default 256; 0 means the check is off.
	MinTransferRate int
	// H2MaxStreams is the most concurrent HTTP/2 streams per client
	// connection (SETTINGS_MAX_CONCURRENT_STREAMS), 1 to 2^31-1. Default 250.
	H2MaxStreams int
}

// Buffering bounds how long response bytes wait in the router and how much
// of a request body is read before a dyno is chosen.
type Buffering struct {
	Window time.Duration // longest a response byte waits; default 10ms
	Bytes  int           // flush as soon as this much is waiting; default 16384
	// RequestBytes is how much of a request body, in bytes, the router
	// reads before it takes a concurrency slot and picks a dyno (SPEC.md
	// section 4.7); a body that fits goes to the dyno whole, a larger one
	// streams on once this much has been read. Default 65536; 0 means
	// bodies stream from the start (the dyno is chosen at once).
	RequestBytes int
}

// App is one app of the space.
type App struct {
	// Name matches ^[a-z][a-z0-9-]{2,29}$ and is unique in the space.
	Name string
	// Domains are lower case, without a trailing dot, unique across apps.
	// A wildcard is written "*.example.com" and matches one or more labels
	// in front of example.com.
	Domains []string
	// TLS lists the certificate chains (RSA and/or ECDSA) of the app;
	// empty with TLSAuto.
	TLS []Cert
	// TLSAuto is tls: auto: the app's certificates come from ACME
	// (SPEC.md 12.1). Load makes sure the Config has an ACME and that no
	// domain of the app is a wildcard.
	TLSAuto bool
	// Features are the feature names as written; FeatureSet holds the same
	// for lookups. When the key is omitted, Features is
	// [spaces-tls-salesforce].
	Features    []string
	FeatureSet  map[string]bool
	Maintenance bool
	// Timeouts are the global timeouts with the app's overrides applied.
	Timeouts Timeouts
	// ConfigVars are the app's config vars (ERROR_PAGE_URL,
	// MAINTENANCE_PAGE_URL, HEROKU_EXTRA_RESOLVER, and any other).
	ConfigVars map[string]string
	Dynos      []Dyno
	// MTLS is the app's client certificate policy (key mtls, SPEC.md
	// section 11.1); Mode is MTLSOff when the key is omitted.
	MTLS MTLS
	// IPRules are the networks the app accepts clients from (key
	// ip_rules, SPEC.md section 11.2), at most MaxIPRules; empty: every
	// address.
	IPRules []IPRule
	// DynoTLS is how the router connects to the app's dynos (key
	// dyno_tls, SPEC.md section 12.4); Mode is DynoTLSOff when omitted.
	DynoTLS DynoTLS
}

// Has reports whether the app has feature f on.
func (a *App) Has(f string) bool { return a.FeatureSet[f] }

// Cert is one certificate chain and its key, as file paths.
type Cert struct {
	Cert string // PEM file: leaf first, then intermediates
	Key  string // PEM file with the private key
	// ServeFrom, when set, stages the chain: from that time on it is
	// served instead of the app's chains of the same key type with no or
	// an earlier ServeFrom (SPEC.md 12.3). Zero: served from load. Load
	// checks a staged chain as at its time: its key, every domain of the
	// app covered, and, for a time to come, valid at it. A ServeFrom in
	// the past makes the chain current.
	ServeFrom time.Time
}

// Dyno states.
const (
	StateUp       = "up"
	StateCrashed  = "crashed"
	StateStarting = "starting"
)

// Dyno is one backend process of an app.
type Dyno struct {
	Name    string // web.1, web.2, …; unique within the app
	Address string // host:port
	State   string // up (default), crashed or starting
}

// Feature names (SPEC.md section 3).
const (
	FeatureTLSSalesforce          = "spaces-tls-salesforce"
	FeatureTLSModern              = "spaces-tls-modern"
	FeatureStrictTLS              = "spaces-strict-tls"
	FeatureTLSLegacy              = "spaces-tls-legacy"
	FeatureDisableHTTP2           = "http-disable-http2"
	FeatureDisableKeepaliveToDyno = "http-disable-keepalive-to-dyno"
	FeatureEndToEndContinue       = "http-end-to-end-continue"
	FeatureExtraResolver          = "spaces-extra-resolver"
)

// SpaceCA is the space's certificate authority: it issues the client
// certificates of SPEC.md section 11.3 and is trusted by apps whose
// mtls.trust names "space".
type SpaceCA struct {
	// Cert and Key are PEM files of the CA certificate (one CA
	// certificate, ECDSA P-256 or RSA of at least 2048 bits) and its
	// private key; paths resolved against the config file's directory.
	// Both required. Load checks them; LoadWith with
	// LoadOptions.SkipSpaceCAFiles does not read them.
	Cert, Key string
	// Previous are older CAs still trusted for client certificates until
	// their RetireAt (SPEC.md section 12.3), in file order; empty, not
	// nil, when there are none. An entry whose RetireAt was already past
	// at load is kept (with a warning): it is retired, and the router
	// must not trust it.
	Previous []PreviousCA
	// StateDir is where issued client certificates, their keys and
	// revocations are kept, resolved against the config file's directory.
	// Required. It may not exist yet (the router creates it, mode 0700);
	// if it exists, it is a directory.
	StateDir string
}

// PreviousCA is a CA certificate still trusted until RetireAt.
type PreviousCA struct {
	Cert     string    // PEM file
	RetireAt time.Time // RFC 3339 in the file
}

// mtls modes (SPEC.md section 11.1).
const (
	MTLSOff      = "off"
	MTLSOptional = "optional"
	MTLSRequire  = "require"
)

// mtls.forward values.
const (
	ForwardXFCC = "xfcc"
	ForwardNone = "none"
)

// TrustSpace is the mtls.trust entry that names the space CA (its current
// and not yet retired previous certificates).
const TrustSpace = "space"

// MTLS is an app's client certificate policy.
type MTLS struct {
	// Mode is MTLSOff (default), MTLSOptional or MTLSRequire.
	Mode string
	// Trust lists TrustSpace and/or PEM bundle paths (resolved against
	// the config file's directory) of CAs whose client certificates the
	// app accepts, each once; every bundle holds CA certificates only, at
	// least one. When Mode is not off it is not empty: omitted, it is
	// [space] for a space with a space_ca (and an error otherwise). Under
	// MTLSOff it is as written, [] when omitted.
	Trust []string
	// Forward is ForwardXFCC (default) or ForwardNone: what the dyno is
	// told of the client certificate.
	Forward string
}

// MaxIPRules is the most ip_rules an app may have (SPEC.md section 11.2).
const MaxIPRules = 60

// IPRule is one network an app accepts clients from.
type IPRule struct {
	// Prefix is masked (no host bits) and never an IPv4-mapped IPv6
	// network: ::ffff:10.0.0.0/104 in the file is 10.0.0.0/8 here, so the
	// router compares it with the unmapped peer address (Addr.Unmap).
	// Prefixes are unique within an app.
	Prefix      netip.Prefix
	Description string // free text; may be empty
}

// ACME is the directory apps with tls: auto get certificates from.
type ACME struct {
	// Directory is the ACME directory URL, https (RFC 8555 section 6.1).
	// Required.
	Directory string
	// Email is the account's contact, one bare address; may be empty.
	Email string
	// AgreeTOS must be true: the operator agrees to the CA's terms.
	AgreeTOS bool
	// TrustedRoots is a PEM file of roots (at least one certificate,
	// resolved against the config file's directory) to trust the ACME
	// server (and the certificates it issues, for the verify-full status)
	// with; "" means the system's.
	TrustedRoots string
	// Storage is the directory of ACME accounts, certificates, keys and
	// locks, kept across restarts, resolved against the config file's
	// directory. Required. It may not exist yet (the router creates it,
	// mode 0700); if it exists, it is a directory.
	Storage string
	// RenewBefore is how long before expiry renewal starts; default 720h,
	// always > 0.
	RenewBefore time.Duration
}

// dyno_tls modes (SPEC.md section 12.4).
const (
	DynoTLSOff        = "off"
	DynoTLSRequire    = "require"
	DynoTLSVerifyCA   = "verify-ca"
	DynoTLSVerifyFull = "verify-full"
)

// DynoTLS is how the router speaks TLS to an app's dynos.
type DynoTLS struct {
	// Mode is DynoTLSOff (default: plain HTTP/1.1), DynoTLSRequire (TLS,
	// no verification), DynoTLSVerifyCA (a chain to Trust) or
	// DynoTLSVerifyFull (chain and name).
	Mode string
	// Trust lists PEM bundles (resolved against the config file's
	// directory, each listed once) of the certificates dyno certificates
	// may chain to; they may hold an old and a new CA side by side. Any
	// certificate is an anchor, a CA or a dyno's self-signed one. Not
	// empty for verify-ca and verify-full; [] when omitted.
	Trust []string
	// ServerName is the host name verify-full checks the certificate of a
	// dyno whose address is an IP address against; Load requires it then.
	// A dyno at a host name is checked against that name.
	ServerName string
}

// Admin is the admin API, the dashboard and their sign-in.
type Admin struct {
	// TLS is the admin listener's certificate; required with Auth unless
	// listen.admin is a loopback address. Nil: plain HTTP.
	TLS *Cert
	// Auth is the OpenID Connect sign-in; nil: no API and no dashboard.
	Auth *AdminAuth
}

// AdminAuth is the OpenID Connect provider the admin API and dashboard
// sign in with, and how its group claims map to roles.
type AdminAuth struct {
	Issuer           string // the provider's issuer URL (discovery at /.well-known/openid-configuration)
	ClientID         string
	ClientSecretFile string        // a file holding the client secret (not the secret itself)
	RedirectURL      string        // the dashboard's /auth/callback as the provider knows it
	GroupsClaim      string        // the ID token claim with the groups; default "groups"
	AuthzTTL         time.Duration // how long an authorisation decision is cached; default and at most 5m
	Roles            []RoleMapping
}

// Admin roles (SPEC.md section 13).
const (
	RoleAdmin        = "admin"        // every app, every action
	RoleOwner        = "owner"        // its apps: reads and changes
	RoleCollaborator = "collaborator" // its apps: reads only
)

// RoleMapping gives a role to the members of a group.
type RoleMapping struct {
	Group string
	Role  string   // RoleAdmin, RoleOwner or RoleCollaborator
	Apps  []string // the apps of an owner or collaborator (required for them); empty for admin
}
