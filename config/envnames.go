package config

import (
	"slices"
	"strings"

	"github.com/ony-ai/ony/internal/yamlnode"
)

// otherEnv are the ONY_ variables Ony reads outside the configuration schema: the config file's
// name, the agent-side commands' settings and the test suites' servers. Every other name comes from
// the schema, so an option added there is known here without a change. A test fails if Go code
// names an ONY_ variable that KnownEnv lacks.
var otherEnv = []string{
	"ONY_CONFIG", // the configuration file, for server commands
	// ony request, hook and mcp
	"ONY_URL", "ONY_TOKEN", "ONY_TOKEN_FILE", "ONY_CLIENT_CONFIG",
	"ONY_HOOK_DEADLINE", "ONY_HOOK_TIMEOUT", "ONY_HOOK_POLICY",
	// the test suites (internal/testdb, internal/testredis, internal/browsertest)
	"ONY_TEST_POSTGRES_URL", "ONY_TEST_REDIS_URL", "ONY_TEST_CHROMIUM", "ONY_UPDATE_SCREENSHOTS",
}

// KnownEnv returns every ONY_ variable Ony reads, sorted: one per option of the schema, NAME_FILE
// beside each secret option's NAME, and the few read outside the schema.
func KnownEnv() []string {
	out := slices.Clone(otherEnv)
	for _, lf := range leaves() {
		out = append(out, lf.env)
		if lf.secret() {
			out = append(out, lf.env+"_FILE")
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// UnknownVar is an ONY_ variable that Ony does not read, most likely a misspelling, and the known
// name nearest to it.
type UnknownVar struct {
	Name    string // as set; quoted and shortened when it is not a plain NAME (env names may hold anything)
	Nearest string
}

// UnknownEnv returns the ONY_ variables in environ (os.Environ's "NAME=value" form) that Ony does not
// read, sorted by name. Values are never looked at, so they cannot end up in a message.
func UnknownEnv(environ []string) []UnknownVar {
	known := KnownEnv()
	var out []UnknownVar
	seen := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "ONY_") || seen[name] {
			continue
		}
		seen[name] = true
		if _, found := slices.BinarySearch(known, name); found {
			continue
		}
		out = append(out, UnknownVar{Name: name, Nearest: nearest(name, known)})
	}
	slices.SortFunc(out, func(a, b UnknownVar) int { return strings.Compare(a.Name, b.Name) })
	for i := range out {
		out[i].Name = envLabel(out[i].Name)
	}
	return out
}

// UnknownEnvErrors lists the unknown variables as configuration mistakes, placed at the variable
// like any other mistake from the environment; nil when there are none.
func UnknownEnvErrors(environ []string) *Errors {
	var list []yamlnode.Diagnostic
	for _, u := range UnknownEnv(environ) {
		list = append(list, envPlace(u.Name).diagnostic("",
			"unknown variable, Ony ignores it (nearest known name: "+u.Nearest+")"))
	}
	if list == nil {
		return nil
	}
	return &Errors{List: list}
}

func envLabel(name string) string {
	if len(name) > 100 || strings.ContainsFunc(name, func(r rune) bool {
		return !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		return quoteShort(name)
	}
	return name
}

// nearest returns the name in known that takes the fewest single-character edits (insert, delete,
// replace, swap two neighbours) to reach from name; the first such in sorted order on a tie.
//
// NAME_FILE whose NAME is known is an option that is not a secret, so takes no _FILE form: NAME is
// what was meant.
func nearest(name string, known []string) string {
	if stem, ok := strings.CutSuffix(name, "_FILE"); ok {
		if _, found := slices.BinarySearch(known, stem); found {
			return stem
		}
	}
	best, bestD := "", -1
	for _, k := range known {
		if d := editDistance(name, k); bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance: Levenshtein plus transposition of
// neighbours, the commonest typing slip (ONY_DATBAASE_URL).
func editDistance(a, b string) int {
	if len(a) > 256 {
		a = a[:256] // a name this long is nobody's typo; keep the work bounded
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
