package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBuildVersion(t *testing.T) {
	t.Parallel()
	const rev = "0123456789abcdef0123456789abcdef01234567"
	info := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/spacerouter/spacerouter", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	cases := []struct {
		name    string
		ldflags string
		bi      *debug.BuildInfo
		ok      bool
		want    string
	}{
		{"ldflags win", "1.2.3", info("v9.9.9", "vcs.revision", rev), true, "1.2.3"},
		{"no build info", "dev", nil, false, "dev"},
		{"go build without VCS", "dev", info("(devel)"), true, "dev"},
		{"empty version", "", info(""), true, "dev"},
		{"go install of a tag", "dev", info("v1.4.0"), true, "v1.4.0"},
		{"go build in a clean checkout", "dev",
			info("v0.0.0-20260102030405-0123456789ab", "vcs", "git", "vcs.revision", rev,
				"vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "false"), true,
			"v0.0.0-20260102030405-0123456789ab (commit " + rev + ", 2026-01-02T03:04:05Z)"},
		{"go build with local changes", "dev",
			info("v0.0.0-20260102030405-0123456789ab+dirty", "vcs", "git", "vcs.revision", rev,
				"vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "true"), true,
			"v0.0.0-20260102030405-0123456789ab+dirty (commit " + rev + ", modified, 2026-01-02T03:04:05Z)"},
		{"older Go: devel with VCS", "dev", info("(devel)", "vcs.revision", rev, "vcs.modified", "true"), true,
			"dev (commit " + rev + ", modified)"},
		{"time without revision", "dev", info("v1.4.0", "vcs.time", "2026-01-02T03:04:05Z"), true, "v1.4.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, buildVersion(tc.ldflags, tc.bi, tc.ok))
		})
	}
}
