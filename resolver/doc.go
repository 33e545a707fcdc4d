// Package resolver resolves dyno host names for apps with the
// spaces-extra-resolver feature (SPEC.md section 3): first through the app's
// extra DNS server (HEROKU_EXTRA_RESOLVER), then through the system
// resolver.
//
// It owns the DNS exchange with the extra server (A and AAAA queries over a
// connected UDP socket, retried over TCP when the answer is truncated, RFC
// 1035 section 4.2), the fallback to a *net.Resolver when the extra server
// fails, a bounded per-Resolver cache that keeps answers for their TTL, and
// coalescing of concurrent lookups of one name into one query. A Resolver
// also dials (DialContext), so the router can use it where it would use a
// net.Dialer.
//
// The whole lookup honours the caller's context: the extra server gets at
// most half of the time left (and never more than a second), so a silent
// server still leaves the fallback time to answer within the dyno connect
// timeout.
//
// The package does not know apps, features or config vars: the router
// builds one Resolver per distinct HEROKU_EXTRA_RESOLVER value and decides
// which dynos use it. It does not log; Options.OnFailure reports each
// fallback so the caller can write the operational log line.
package resolver
