// Package spaceca is the space's certificate authority (SPEC.md sections
// 11.3 and 12.3): it makes the CA (Init), issues, lists, revokes and
// renews client certificates kept under a state directory, writes the
// files a client needs (Download), and judges a client certificate the way
// the router does on each connection (VerifyClient, Verdict.Recheck), with
// the X-Forwarded-Client-Cert value for a verified one (AppendXFCC).
//
// It owns:
//   - the CA files: a new ECDSA P-256 key and self-signed certificate made
//     by Init, never over an existing file; Open loads an ECDSA P-256 or
//     RSA CA (its certificate, optionally followed by its own chain, and
//     the matching key) and the previous CAs still trusted until their
//     retire time;
//   - the state directory and its layout (see Open), every file written
//     atomically (a temporary file in the same directory, fsync, rename, so
//     a crash leaves the old file or the new one, never half of one), keys
//     mode 0600, directories 0700, writers serialized by a lock file so the
//     ca subcommand and a running router can share the directory;
//   - the generation counter that every change bumps, which a running
//     router polls (Refresh, Watch) to see a certificate issued or revoked
//     by the subcommand within its poll interval, without a reload;
//   - the status of a client certificate (ready, expiring from 75 days
//     before its end, expired, revoked) and its successor, issued by Renew
//     75 days before the end;
//   - the client-certificate rules of SPEC.md section 11.1 (chain to a
//     trusted CA, validity, clientAuth, serial not revoked, CA not retired)
//     and their causes for H41.
//
// It does not read the config file (callers pass plain paths and values),
// does not log (it returns errors, warnings and renewals for the caller to
// log and count), does not serve TLS and does not decide what a request
// gets: the router asks for a Verdict once per connection and rechecks it
// on each request. It imports only the standard library.
package spaceca
