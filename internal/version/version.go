// Package version says which build of Ony is running: the module version, VCS commit and time that
// `go build` stamps into the binary, or the values a release sets with -ldflags.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Set at release with, e.g.,
//
//	go build -ldflags "-X github.com/ony-ai/ony/internal/version.version=v1.2.0
//	  -X github.com/ony-ai/ony/internal/version.commit=$(git rev-parse HEAD)
//	  -X github.com/ony-ai/ony/internal/version.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/ony
//
// Each one set wins over what the build stamped.
var version, commit, date string

// Info is a build's identity. Empty fields are unknown.
type Info struct {
	Version string // a module version such as v1.2.0 or a pseudo-version; "(devel)" when unknown
	Commit  string // the full VCS revision
	Time    string // RFC 3339
	// Built says Time is when the binary was built (-ldflags); otherwise it is the commit's time.
	Built    bool
	Modified bool // built from a work tree with uncommitted changes
}

// Get reads this binary's build.
func Get() Info {
	var i Info
	if bi, ok := debug.ReadBuildInfo(); ok {
		i = fromBuild(bi)
	}
	return i.override(version, commit, date)
}

func fromBuild(bi *debug.BuildInfo) Info {
	i := Info{Version: bi.Main.Version}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Commit = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

func (i Info) override(v, c, d string) Info {
	if v != "" {
		i.Version = v
	}
	if c != "" {
		i.Commit, i.Modified = c, false
	}
	if d != "" {
		i.Time, i.Built = d, true
	}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	return i
}

// Short is the version alone, for places that take one token (MCP's server info): the module
// version, or "devel+<commit>" for a build that has none.
func (i Info) Short() string {
	if i.Version != "(devel)" {
		return i.Version
	}
	if c := i.shortCommit(); c != "" {
		return "devel+" + c
	}
	return "devel"
}

func (i Info) shortCommit() string {
	if len(i.Commit) > 12 {
		return i.Commit[:12]
	}
	return i.Commit
}

// String is what `ony version` prints, e.g. "ony v1.2.0 (commit 3f2a9c1d7e4b, built 2026-12-05T10:00:00Z)".
func (i Info) String() string {
	var parts []string
	if c := i.shortCommit(); c != "" {
		if i.Modified {
			c += ", modified"
		}
		parts = append(parts, "commit "+c)
	}
	if i.Time != "" {
		if i.Built {
			parts = append(parts, "built "+i.Time)
		} else {
			parts = append(parts, "committed "+i.Time)
		}
	}
	if len(parts) == 0 {
		return "ony " + i.Version
	}
	return fmt.Sprintf("ony %s (%s)", i.Version, strings.Join(parts, ", "))
}
