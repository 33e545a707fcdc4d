package main

import (
	"runtime/debug"
	"strings"
)

// buildVersion returns what -version prints after "spacerouter ": the
// version set with -ldflags "-X main.version=..." (ldflags, "dev" when
// unset) when there is one, else what the Go toolchain recorded in the
// binary (bi, ok from debug.ReadBuildInfo): the module version of a `go
// install ...@v1.2.3` binary, or of a `go build` in a git checkout (a
// pseudo-version since Go 1.24), then the commit, whether the tree had
// local changes, and the commit time when they were recorded:
//
//	v1.2.3
//	v0.0.0-20260102030405-0123456789ab+dirty (commit 0123456789abcdef0123456789abcdef01234567, modified, 2026-01-02T03:04:05Z)
//	dev
func buildVersion(ldflags string, bi *debug.BuildInfo, ok bool) string {
	if ldflags != "dev" && ldflags != "" {
		return ldflags
	}
	if !ok || bi == nil {
		return "dev"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	var revision, modified, at string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		case "vcs.time":
			at = s.Value
		}
	}
	if revision == "" {
		return v
	}
	details := []string{"commit " + revision}
	if modified == "true" {
		details = append(details, "modified")
	}
	if at != "" {
		details = append(details, at)
	}
	return v + " (" + strings.Join(details, ", ") + ")"
}
