// Package config owns spacerouter's config file: it reads the YAML (or
// JSON) file of SPEC.md section 2, applies every default in one place
// (Defaults), merges each app's timeout overrides into the global ones, and
// validates the result. What it returns is a complete, read-only *Config:
// other packages never apply defaults or re-validate.
//
// Every problem names the file, the line and the key path
// ("space.yaml:12: apps[0].features: unknown feature \"x\": ..."), and all
// problems of a file are reported together, in file order, as *Errors.
// Unknown keys, wrong types, bad durations, addresses, domains, URLs and
// features are all problems; nothing is ignored in silence. Notes that do
// not stop the config (a deprecated feature, a certificate that covers none
// of its app's domains, a previous space CA whose retire_at is past, a
// dyno_tls key the mode does not use) are kept for Config.Warnings.
//
// Relative paths in the file (certificates, CA files and trust bundles,
// space_ca.state_dir, acme.storage, a router log file) are resolved against
// the directory of the config file. Certificates are loaded once with
// tls.LoadX509KeyPair to prove they are usable, staged ones (serve_from)
// too, checked as at their time; the space CA, its key, the previous CAs
// and the mtls trust bundles are parsed to prove they are CAs, and
// acme.trusted_roots and the dyno_tls trust bundles to prove they hold
// certificates. Nothing parsed is kept, as package tlsconfig builds the
// *tls.Config, the router talks ACME and to dynos, and the CA is the
// business of the spacerouter ca subcommand. LoadWith with
// LoadOptions.SkipSpaceCAFiles leaves the space CA's files unread, for
// `spacerouter ca init`, which makes them.
//
// The package does not watch the file or handle SIGHUP (cmd/spacerouter
// calls Load again), does not open listeners or log files, does not create
// space_ca.state_dir or acme.storage, does not contact the ACME CA or the
// dynos, does not fetch error pages, and does not log: it returns problems
// and warnings.
package config
