// Package yamlnode validates YAML documents node by node for config, risk policies and ladders: a
// Walker reads mappings and lists on a node budget, and every mistake becomes a Diagnostic with its
// position, all of them reported together as Diagnostics.
package yamlnode

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Describe names n's type the way an error message should ("a list", "an integer").
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		}
		return "a " + n.ShortTag() + " value"
	}
	return "an unsupported YAML node"
}

// Suggest returns ` (did you mean "x"?)` for the closest of known within two edits, which catches
// typos without proposing unrelated names; "" when nothing is that close.
func Suggest(s string, known []string) string {
	known = slices.Clone(known)
	slices.Sort(known) // deterministic between equally close names
	best, bestDist := "", 3
	for _, k := range known {
		if d := EditDistance(strings.ToLower(s), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// EditDistance is the Levenshtein distance, cut off at 3 for lengths that cannot be within two edits.
func EditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > 2 || d < -2 {
		return 3
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
