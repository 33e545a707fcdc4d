// Package store shares a space among several routers through etcd
// (SPEC.md section 14). It reads every key under store.etcd.prefix at one
// revision, builds the config with config.BuildShared (each key validated
// on its own, a bad key refused alone), hands it to the router through
// Options.OnSnapshot, and then watches the prefix from the next revision,
// applying a burst of changes once (Options.Settle, Options.Coalesce). While etcd is away
// it keeps the last config, reconnects with backoff and resumes the watch
// from the last revision; a compacted revision forces a full read. It
// rewrites store.cache_file atomically after each applied change and
// serves it at a start while etcd does not answer. Each router writes its
// status (applied revision, refused keys) under routers/<id> on a lease.
// The metrics spacerouter_store_connected, _applied_revision and
// _refused_keys are registered on the registry it is given.
//
// It also holds the helpers of the shared state other parts write
// (maintenance/<app>, clients/<app>/<id>, routers/<id>), certmagic's
// storage on etcd under acme/ with locks on session leases
// (ACMEStorage), and the helpers of the spacerouter store subcommand
// (Import, Get, Check).
//
// It does not serve requests, swap the router's config (the OnSnapshot
// callback does), or decode clients/ values (package spaceca owns them).
package store
