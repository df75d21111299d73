package version

import (
	"runtime/debug"
	"testing"
)

func TestInfo(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205100000-3f2a9c1d7e4b"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "3f2a9c1d7e4b5a6978695a4b3c2d1e0f9a8b7c6d"},
		{Key: "vcs.time", Value: "2026-12-05T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	for _, tt := range []struct {
		name        string
		info        Info
		want, short string
	}{
		{"nothing stamped", fromBuild(&debug.BuildInfo{}).override("", "", ""), "ony (devel)", "devel"},
		{"go build in a work tree", fromBuild(stamped).override("", "", ""),
			"ony v0.0.0-20261205100000-3f2a9c1d7e4b (commit 3f2a9c1d7e4b, modified, committed 2026-12-05T10:00:00Z)",
			"v0.0.0-20261205100000-3f2a9c1d7e4b"},
		{"devel with a commit", fromBuild(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef0123456789"}}}).override("", "", ""),
			"ony (devel) (commit abcdef012345)", "devel+abcdef012345"},
		{"release ldflags win", fromBuild(stamped).override("v1.2.0", "0123456789abcdef", "2026-12-06T08:00:00Z"),
			"ony v1.2.0 (commit 0123456789ab, built 2026-12-06T08:00:00Z)", "v1.2.0"},
	} {
		if got := tt.info.String(); got != tt.want {
			t.Errorf("%s: String() = %q, want %q", tt.name, got, tt.want)
		}
		if got := tt.info.Short(); got != tt.short {
			t.Errorf("%s: Short() = %q, want %q", tt.name, got, tt.short)
		}
	}
}
