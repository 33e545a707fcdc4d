// Package tlsconfig turns the TLS profiles of SPEC.md section 5 and each
// app's certificates into one *tls.Config per app, chosen per connection
// from the ClientHello's SNI name.
//
// It owns:
//   - the profiles as data (salesforce, modern, default, strict): their
//     protocol versions and their TLS 1.2-and-older cipher suites, written
//     in SPEC.md's short form and resolved by full IANA name against
//     tls.CipherSuites() and tls.InsecureCipherSuites() when used, so a
//     typo or a suite Go does not implement is an error, never a smaller
//     set served in silence (ProfileFor);
//   - loading each app's certificates (RSA and/or ECDSA, whole chain) and
//     picking, per handshake, one the client supports, ECDSA first;
//   - staged chains (serve_from, SPEC.md 12.3): per key type, the chains
//     with the latest serve_from that has come are served, switching at
//     that time by the clock of Options.Now, without a rebuild;
//   - apps whose certificates come from elsewhere (App.GetCertificate, tls:
//     auto): a name whose certificate is pending is refused with
//     unrecognized_name, reason acme_pending;
//   - telling the caller which chain each handshake served
//     (Options.OnServed), for the router's view of TLS connections;
//   - the SNI lookup (exact domain before wildcard, ASCII case folded) and
//     the refusal of a missing or unknown name with the alert
//     unrecognized_name (112);
//   - ALPN: h2 is offered only when the options, the app and its profile
//     allow it, and a TLS 1.2 client offering no suite HTTP/2 allows gets
//     http/1.1 for that connection (SPEC.md section 4b);
//   - warnings about a profile none of whose TLS 1.2 suites fits the
//     app's certificates (expiry is the router's to judge: Certificates).
//
// What crypto/tls decides and a profile cannot change:
//   - TLS 1.3 suites are fixed by Go (TLS_AES_128_GCM_SHA256,
//     TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256) wherever 1.3 is
//     enabled; Config.CipherSuites covers TLS 1.2 and older only.
//   - The order of a suite list is ignored, and PreferServerCipherSuites is
//     deprecated and ignored: Go picks by its own rule (AES-GCM first when
//     both sides have AES hardware, else ChaCha20). Profiles are sets.
//   - A version set with a gap would be served as its min..max range.
//   - SHA-1 signatures stay off in TLS 1.2 for every profile (Go's default,
//     SPEC.md section 4b).
//
// Session tickets are on, for TLS 1.2 and 1.3, and bound to the app, the
// SNI name and the generation of chains that issued them (issue 9; RFC
// 6066 section 3): a ticket from one app never resumes a session of
// another, nor of another of the app's names, nor after a staged chain
// took over. The per-app configs seal tickets through a Tickets (WrapSession
// and UnwrapSession), whose keys crypto/tls makes and rotates; the keys of
// the listener's config are never used. A router that passes one Tickets to
// every Store it builds (Options.Tickets) keeps resumption working across
// reloads.
//
// The package does not read the config file or know feature names other
// than the TLS profile ones (http-disable-http2 arrives as
// App.DisableHTTP2), does not open listeners, does not serve HTTP/2, does
// not compare SNI with Host (AppForSNI gives the router what it needs),
// does not speak ACME (App.GetCertificate is the acme package's, wired by
// the router; the ACME validation handshakes, ALPN acme-tls/1, are
// answered before the Store is asked), and never logs: it returns errors
// and warnings, and reports refused handshakes through
// Options.OnHandshakeFailure. It imports only the standard library.
package tlsconfig
