// Package acme is the router's certificate manager for apps with tls: auto
// (SPEC.md section 12.1): it obtains and renews a certificate for each of
// their domains from the acme directory with TLS-ALPN-01 answered on the
// router's own https listener, serves the certificates to the handshakes
// that ask for them, and reports a status per app and domain (waiting,
// in_progress, ok, failing, with the last error, not_after, issuer and a
// verify-full check) for the admin API and spacerouter certs status.
//
// The ACME work is github.com/caddyserver/certmagic's: the account, the
// orders, the challenge certificates, the renewal window, the backoff and
// retries of a failed order (1 min, 2 min, … up to 6 h between tries, for
// 30 days), its internal rate limit, and the storage under Options.Storage
// (account, certificates, keys and locks, so a restart does not order
// again, and two routers sharing the directory do not order twice). This
// package configures it for the router: TLS-ALPN-01 only (the router does
// not answer HTTP-01 on port 80, and DNS-01, which wildcards need, is not
// supported), on-demand issuance off (only configured domains get
// certificates), renewal renew_before ahead of expiry at the latest (the
// CA's renewal information, ARI, may say earlier), and its info-level
// chatter moved to debug (the manager logs each state change itself).
//
// It owns:
//   - the set of managed domains, changed whole by SetDomains on a reload:
//     a new domain is ordered in the background (or loaded from storage),
//     a dropped one stops being ordered, renewed and served;
//   - the answer to a handshake: GetCertificate for a managed domain, or
//     ErrPending while it has none, and ChallengeConfig for the ACME
//     server's TLS-ALPN-01 validation handshakes (ALPN acme-tls/1);
//   - the status of each domain, kept in memory for Status and written to
//     Options.Storage (spacerouter-status.json) for StatusFromStorage,
//     which reads what a running router left without starting anything.
//
// It does not read the config file (callers pass Options and domain
// lists), does not listen (the router's https listener routes the
// handshakes here), and does not decide which alert a refused handshake
// gets: the router refuses a pending domain with unrecognized_name.
package acme
