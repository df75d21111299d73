package risk

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/ony-ai/ony/internal/yamlnode"
)

// mustPolicy parses src and builds its engine, failing the test on any error.
func mustPolicy(t testing.TB, src string) (*Policy, *Engine) {
	t.Helper()
	p, err := ParsePolicy([]byte(src), "policy.yaml")
	if err != nil {
		t.Fatalf("ParsePolicy:\n%v", err)
	}
	e, err := p.Engine()
	if err != nil {
		t.Fatalf("Engine of a parsed policy: %v", err)
	}
	return p, e
}

// policyErrors parses src and returns its errors, failing if there are none.
func policyErrors(t *testing.T, src string) []yamlnode.Diagnostic {
	t.Helper()
	p, err := ParsePolicy([]byte(src), "policy.yaml")
	if err == nil {
		t.Fatalf("ParsePolicy accepted:\n%s\ngiving %+v", src, p)
	}
	var pe *PolicyErrors
	if !errors.As(err, &pe) {
		t.Fatalf("error is %T, want *PolicyErrors: %v", err, err)
	}
	if p != nil {
		t.Fatalf("ParsePolicy returned a policy with its errors: %+v", p)
	}
	return pe.List
}

func TestParsePolicyFeatures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		src  string
		want Policy
	}{
		{"version only", "version: 1\n", Policy{Version: 1}},
		{"empty sections", "version: 1\nrules:\nfloors:\n", Policy{Version: 1}},
		{"empty lists", "version: 1\nrules: {disable: [], levels: {}, add: []}\nfloors: {actions: {}, labels: {}}\n", Policy{Version: 1}},
		{"disable", "version: 1\nrules:\n  disable: [git.protected_branch_push, shell.sudo]\n",
			Policy{Version: 1, Disable: []string{"git.protected_branch_push", "shell.sudo"}}},
		{"levels keep file order", "version: 1\nrules:\n  levels:\n    shell.sudo: Critical\n    git.protected_branch_push: low\n",
			Policy{Version: 1, Levels: []LevelOverride{{"shell.sudo", Critical}, {"git.protected_branch_push", Low}}}},
		{"add, every field", `version: 1
rules:
  add:
    - id: acme.wipe
      reason: file_delete
      level: high
      actions: ["files.*", payment]
      kinds: [command, ""]
      keywords: [wipe, "404"]
      pattern: '(?m)^wipe .*'
      require: ['--all']
      unless: ['--dry-run']
      fold: true
      word_start: true
      within: "\n"
      labels: {keys: [env], values: [prod, live]}
`, Policy{Version: 1, Add: []Rule{{
			ID: "acme.wipe", Reason: ReasonFileDelete, Level: High, Actions: []string{"files.*", "payment"},
			Kinds: []string{"command", ""}, Keywords: []string{"wipe", "404"}, Pattern: `(?m)^wipe .*`,
			Require: []string{"--all"}, Unless: []string{"--dry-run"}, Fold: true, WordStart: true, Within: "\n",
			Label: LabelSelector{Keys: []string{"env"}, Values: []string{"prod", "live"}},
		}}}},
		{"add, the reason org_policy", "version: 1\nrules:\n  add:\n    - {id: x, reason: org_policy, level: medium, actions: ['*']}\n",
			Policy{Version: 1, Add: []Rule{{ID: "x", Reason: ReasonOrgPolicy, Level: Medium, Actions: []string{"*"}}}}},
		{"floors, normalised, in file order", `version: 1
floors:
  actions: {"DB.Migrate": high, "infra.*": medium}
  labels: {"Env = Prod": critical, "team=*": medium}
`, Policy{Version: 1,
			ActionFloors: []ActionFloor{{"db.migrate", High}, {"infra.*", Medium}},
			LabelFloors:  []LabelFloor{{"env", "prod", Critical}, {"team", "*", Medium}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, _ := mustPolicy(t, tc.src)
			normalizeNil(p)
			normalizeNil(&tc.want)
			if !reflect.DeepEqual(*p, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *p, tc.want)
			}
		})
	}

	t.Run("aliases", func(t *testing.T) {
		t.Parallel()
		p, _ := mustPolicy(t, `version: 1
floors:
  actions: {deploy: &lvl medium}
rules:
  add:
    - {id: a.one, reason: payment, level: high, actions: &acts [payment, "billing.*"]}
    - {id: a.two, reason: payment, level: *lvl, actions: *acts}
`)
		if len(p.Add) != 2 || p.Add[1].Level != Medium || !slices.Equal(p.Add[1].Actions, []string{"payment", "billing.*"}) {
			t.Errorf("aliases not followed: %+v", p.Add)
		}
	})
}

// normalizeNil makes empty slices nil so that DeepEqual compares content.
func normalizeNil(p *Policy) {
	v := reflect.ValueOf(p).Elem()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Slice:
			if v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
				return
			}
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i))
			}
		}
	}
	walk(v)
}

// wantErr is one expected error: where it is, its path and part of its
// message. at is "line:col" or "line", or "@text" for the place where text
// first occurs in the policy.
type wantErr struct{ at, path, msg string }

// posOf returns "line:col" of the first occurrence of text in src, counting
// columns in characters from 1 as YAML does.
func posOf(t *testing.T, src, text string) string {
	t.Helper()
	i := strings.Index(src, text)
	if i < 0 {
		t.Fatalf("%q is not in the policy", text)
	}
	line := strings.Count(src[:i], "\n") + 1
	col := utf8.RuneCountInString(src[strings.LastIndexByte(src[:i], '\n')+1:i]) + 1
	return fmt.Sprintf("%d:%d", line, col)
}

func checkErrors(t *testing.T, src string, want ...wantErr) {
	t.Helper()
	got := policyErrors(t, src)
	for _, w := range want {
		at := w.at
		if text, ok := strings.CutPrefix(at, "@"); ok {
			at = posOf(t, src, text)
		}
		if !slices.ContainsFunc(got, func(e yamlnode.Diagnostic) bool {
			return e.Pos() == "policy.yaml:"+at && e.Path == w.path && strings.Contains(e.Msg, w.msg)
		}) {
			t.Errorf("missing error %s: %s: …%s…", at, w.path, w.msg)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d", len(got), len(want))
	}
	if t.Failed() {
		t.Logf("policy:\n%s\nerrors:\n%v", src, &PolicyErrors{List: got})
	}
}

func TestParsePolicyErrors(t *testing.T) {
	t.Parallel()
	const v1 = "version: 1\n"
	// rule is a policy with one added rule, valid but for fields.
	rule := func(fields string) string {
		return v1 + "rules:\n  add:\n    - {id: r, reason: payment, level: high, actions: ['*'], " + fields + "}\n"
	}
	for _, tc := range []struct {
		name string
		src  string
		want []wantErr
	}{
		// The document.
		{"empty file", "", []wantErr{{"1:1", "", "empty policy"}}},
		{"comments only", "# nothing\n", []wantErr{{"1:1", "", "empty policy"}}},
		{"null document", "~\n", []wantErr{{"1:1", "", "empty policy"}}},
		{"top level list", "- version: 1\n", []wantErr{{"1:1", "", "must be a mapping, got a list"}}},
		{"syntax", "version: 1\nrules: [\n", []wantErr{{"2", "", "invalid YAML"}}},
		{"two documents", "version: 1\n---\nversion: 1\n", []wantErr{{"@---", "", "second YAML document"}}},
		{"bad UTF-8", "version: 1\nrules: \xff\n", []wantErr{{"2:8", "", "invalid YAML"}}},
		{"control character", "version: 1\nrules: {}\x01\n", []wantErr{{"2:10", "", "invalid YAML"}}},

		// Top level.
		{"missing version", "rules: {}\n", []wantErr{{"1:1", "version", "missing"}}},
		{"version 2", "version: 2\n", []wantErr{{"@2", "version", `unsupported version "2"`}}},
		{"version string", "version: '1'\n", []wantErr{{"@'1'", "version", `unsupported version "1"`}}},
		{"unknown key", v1 + "rulse: {}\n", []wantErr{{"@rulse", "rulse", `unknown key (did you mean "rules"?)`}}},
		{"duplicate key", v1 + "rules: {}\nrules: {}\n", []wantErr{{"3:1", "rules", "duplicate key (first on line 2)"}}},
		{"merge key", v1 + "floors:\n  <<: {actions: {}}\n", []wantErr{{"@<<", "floors", "merge keys"}}},
		{"rules not a mapping", v1 + "rules: [a]\n", []wantErr{{"@[a]", "rules", "expected a mapping, got a list"}}},

		// rules.disable.
		{"disable unknown id", v1 + "rules:\n  disable: [shell.sudoo]\n",
			[]wantErr{{"@shell.sudoo", "rules.disable[0]", `unknown built-in rule "shell.sudoo" (did you mean "shell.sudo"?)`}}},
		{"disable twice", v1 + "rules:\n  disable: [shell.sudo, shell.sudo]\n",
			[]wantErr{{"@shell.sudo]", "rules.disable[1]", "already disabled on line 3"}}},
		{"disable not a list", v1 + "rules:\n  disable: shell.sudo\n",
			[]wantErr{{"@shell.sudo", "rules.disable", "expected a list, got a string"}}},
		{"disable an item that is a list", v1 + "rules:\n  disable: [[shell.sudo]]\n",
			[]wantErr{{"@[shell.sudo]", "rules.disable[0]", "expected a string, got a list"}}},

		// rules.levels.
		{"level unknown id", v1 + "rules:\n  levels: {nope: high}\n",
			[]wantErr{{"@nope", `rules.levels["nope"]`, `unknown built-in rule "nope"`}}},
		{"bad level", v1 + "rules:\n  levels: {shell.sudo: severe}\n",
			[]wantErr{{"@severe", `rules.levels["shell.sudo"]`, `bad level "severe"`}}},
		{"numeric level", v1 + "rules:\n  levels: {shell.sudo: 3}\n",
			[]wantErr{{"@3", `rules.levels["shell.sudo"]`, `bad level "3"`}}},
		{"level of a disabled rule", v1 + "rules:\n  disable: [shell.sudo]\n  levels: {shell.sudo: low}\n",
			[]wantErr{{"@shell.sudo: low", `rules.levels["shell.sudo"]`, "disabled on line 3"}}},
		{"level of an added rule", v1 + "rules:\n  levels: {acme.x: low}\n  add:\n    - {id: acme.x, reason: payment, level: high, actions: ['*']}\n",
			[]wantErr{{"@acme.x", `rules.levels["acme.x"]`, "where it is added (line 5)"}}},
		{"level twice", v1 + "rules:\n  levels: {shell.sudo: low, shell.sudo: high}\n",
			[]wantErr{{"@shell.sudo: high", `rules.levels["shell.sudo"]`, "duplicate key (first on line 3)"}}},

		// rules.add.
		{"add not a list", v1 + "rules:\n  add: {id: x}\n", []wantErr{{"@{id", "rules.add", "expected a list, got a mapping"}}},
		{"rule not a mapping", v1 + "rules:\n  add: [x]\n", []wantErr{{"@x]", "rules.add[0]", "expected a mapping, got a string"}}},
		{"null rule", v1 + "rules:\n  add:\n    -\n", []wantErr{{"4:6", "rules.add[0]", "expected a rule (a mapping), got null"}}},
		{"missing required keys", v1 + "rules:\n  add:\n    - {pattern: x}\n", []wantErr{
			{"@{pattern", "rules.add[0]", `missing required key "id"`},
			{"@{pattern", "rules.add[0]", `missing required key "reason"`},
			{"@{pattern", "rules.add[0]", `missing required key "level"`},
			{"@{pattern", "rules.add[0]", `missing required key "actions"`},
		}},
		{"unknown rule key", rule("patern: x"), []wantErr{{"@patern", "rules.add[0].patern", `unknown key (did you mean "pattern"?)`}}},
		{"bad id", v1 + "rules:\n  add:\n    - {id: Acme X, reason: payment, level: high, actions: ['*']}\n",
			[]wantErr{{"@Acme", "rules.add[0].id", `id "Acme X" must be`}}},
		{"id with a colon", v1 + "rules:\n  add:\n    - {id: 'floor:x', reason: payment, level: high, actions: ['*']}\n",
			[]wantErr{{"@'floor", "rules.add[0].id", `id "floor:x" must be`}}},
		{"built-in id", v1 + "rules:\n  add:\n    - {id: shell.sudo, reason: payment, level: high, actions: ['*']}\n",
			[]wantErr{{"@shell.sudo", "rules.add[0].id", "is a built-in rule"}}},
		{"duplicate id", v1 + "rules:\n  add:\n    - {id: a, reason: payment, level: high, actions: ['*']}\n    - {id: a, reason: payment, level: high, actions: ['*']}\n",
			[]wantErr{{"5:12", "rules.add[1].id", `duplicate id "a" (first on line 4)`}}},
		{"unknown reason", v1 + "rules:\n  add:\n    - {id: r, reason: paymnt, level: high, actions: ['*']}\n",
			[]wantErr{{"@paymnt", "rules.add[0].reason", `unknown reason "paymnt" (did you mean "payment"?)`}}},
		{"unknown reason, no near one", v1 + "rules:\n  add:\n    - {id: r, reason: gremlins, level: high, actions: ['*']}\n",
			[]wantErr{{"@gremlins", "rules.add[0].reason", "known reasons: recursive_delete,"}}},
		{"rule bad level", v1 + "rules:\n  add:\n    - {id: r, reason: payment, level: extreme, actions: ['*']}\n",
			[]wantErr{{"@extreme", "rules.add[0].level", `bad level "extreme"`}}},
		{"bad glob", v1 + "rules:\n  add:\n    - {id: r, reason: payment, level: high, actions: ['pay?', 'a b', '']}\n",
			[]wantErr{
				{"@'pay?'", "rules.add[0].actions[0]", `action glob "pay?"`},
				{"@'a b'", "rules.add[0].actions[1]", `action glob "a b"`},
				{"@'']", "rules.add[0].actions[2]", "empty action glob"},
			}},
		{"no actions", v1 + "rules:\n  add:\n    - {id: r, reason: payment, level: high, actions: []}\n",
			[]wantErr{{"@[]", "rules.add[0].actions", "no actions"}}},
		{"bad kind", rule("kinds: [yaml]"), []wantErr{{"@yaml", "rules.add[0].kinds[0]", `unknown payload kind "yaml"`}}},
		{"bad regexp", rule("pattern: 'a('"), []wantErr{{"@'a('", "rules.add[0].pattern", "bad regexp"}}},
		{"empty pattern", rule("pattern: ''"), []wantErr{{"@''}", "rules.add[0].pattern", "empty pattern"}}},
		{"bad require", rule("pattern: x, require: ['[']"), []wantErr{{"@'['", "rules.add[0].require[0]", "bad regexp"}}},
		{"bad unless", rule("pattern: x, unless: ['x', '*']"), []wantErr{{"@'*']}", "rules.add[0].unless[1]", "bad regexp"}}},
		{"keywords without pattern", rule("keywords: [x]"), []wantErr{{"@keywords", "rules.add[0].keywords", "needs a pattern"}}},
		{"keyword not ASCII", rule("pattern: x, keywords: [löschen, '']"), []wantErr{
			{"@löschen", "rules.add[0].keywords[0]", "not ASCII"},
			{"@'']", "rules.add[0].keywords[1]", "empty keyword"},
		}},
		{"keyword holds the separator", rule(`pattern: x, within: ';', keywords: ['a;b']`),
			[]wantErr{{"@'a;b'", "rules.add[0].keywords[0]", "contains the within separator"}}},
		{"keywords with a start anchor", rule(`pattern: '^drop', keywords: [drop]`),
			[]wantErr{{"@'^drop'", "rules.add[0].pattern", `\A or a non-multiline ^`}}},
		{"fold with upper case", rule(`pattern: DROP, fold: true, unless: ['X']`), []wantErr{
			{"@DROP", "rules.add[0].pattern", "upper-case letter"},
			{"@'X'", "rules.add[0].unless[0]", "upper-case letter"},
		}},
		{"bad within", rule(`pattern: x, within: ab`), []wantErr{{"@ab}", "rules.add[0].within", `within "ab"`}}},
		{"bad bool", rule(`pattern: x, fold: yes`), []wantErr{{"@yes", "rules.add[0].fold", `expected true or false, got "yes"`}}},
		{"label values without keys", rule(`labels: {values: [prod]}`),
			[]wantErr{{"@labels", "rules.add[0].labels", "label values without keys"}}},
		{"empty label key", rule(`labels: {keys: [' ']}`), []wantErr{{"@' '", "rules.add[0].labels.keys[0]", "empty label key"}}},
		{"impossible label key", rule(`labels: {keys: ['my env']}`),
			[]wantErr{{"@'my env'", "rules.add[0].labels.keys[0]", `label key "my env" can never match`}}},
		{"null string", rule(`pattern: ~`), []wantErr{{"@~", "rules.add[0].pattern", "expected a string, got null"}}},

		// floors.
		{"floors unknown key", v1 + "floors:\n  action: {deploy: high}\n",
			[]wantErr{{"@action", "floors.action", `unknown key (did you mean "actions"?)`}}},
		{"floor bad glob", v1 + "floors:\n  actions: {'deploy[1]': high}\n",
			[]wantErr{{"@'deploy", `floors.actions["deploy[1]"]`, `action glob "deploy[1]"`}}},
		{"floor bad level", v1 + "floors:\n  actions: {deploy: huge}\n",
			[]wantErr{{"@huge", `floors.actions["deploy"]`, `bad level "huge"`}}},
		{"floor of low", v1 + "floors:\n  actions: {deploy: low}\n",
			[]wantErr{{"@low", `floors.actions["deploy"]`, "a floor of low has no effect"}}},
		{"floor duplicate, by case", v1 + "floors:\n  actions:\n    deploy: high\n    Deploy: high\n",
			[]wantErr{{"@Deploy", `floors.actions["Deploy"]`, "duplicate key (first on line 4)"}}},
		{"label floor without =", v1 + "floors:\n  labels: {envprod: high}\n",
			[]wantErr{{"@envprod", `floors.labels["envprod"]`, "want key=value"}}},
		{"label floor without value", v1 + "floors:\n  labels: {'env=': high}\n",
			[]wantErr{{"@'env='", `floors.labels["env="]`, "want key=value"}}},
		{"label floor impossible key", v1 + "floors:\n  labels: {'my env=prod': high}\n",
			[]wantErr{{"@'my env", `floors.labels["my env=prod"]`, `label key "my env" can never match`}}},
		{"label floor duplicate", v1 + "floors:\n  labels: {env=prod: high, ENV=PROD: high}\n",
			[]wantErr{{"@ENV", `floors.labels["ENV=PROD"]`, "duplicate key"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkErrors(t, tc.src, tc.want...)
		})
	}
}

func TestParsePolicyReportsEveryMistakeAtOnce(t *testing.T) {
	t.Parallel()
	src := `version: 3
rulez: {}
rules:
  disable: [git.protected_branch_pus, shell.sudo]
  levels: {shell.chmod_world_writable: severe, shell.sudo: low}
  add:
    - id: acme.a
      reason: paymnt
      level: huge
      actions: ["pay[ment]"]
      pattern: 'refund('
    - id: acme.a
      reason: payment
      level: high
      actions: ["*"]
floors:
  actions: {db.migrate: low}
  labels: {envprod: high}
`
	checkErrors(t, src,
		wantErr{"1:10", "version", "unsupported version"},
		wantErr{"2:1", "rulez", "unknown key"},
		wantErr{"4:13", "rules.disable[0]", "unknown built-in rule"},
		wantErr{"5:40", `rules.levels["shell.chmod_world_writable"]`, "bad level"},
		wantErr{"5:48", `rules.levels["shell.sudo"]`, "disabled on line 4"},
		wantErr{"8:15", "rules.add[0].reason", "unknown reason"},
		wantErr{"9:14", "rules.add[0].level", "bad level"},
		wantErr{"10:17", "rules.add[0].actions[0]", "action glob"},
		wantErr{"11:16", "rules.add[0].pattern", "bad regexp"},
		wantErr{"12:11", "rules.add[1].id", "duplicate id"},
		wantErr{"17:25", `floors.actions["db.migrate"]`, "floor of low"},
		wantErr{"18:12", `floors.labels["envprod"]`, "want key=value"},
	)

	// The text form is one "file:line:col: path: message" per line, in file order.
	_, err := ParsePolicy([]byte(src), "acme.yaml")
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 12 {
		t.Fatalf("got %d lines:\n%v", len(lines), err)
	}
	if lines[0] != `acme.yaml:1:10: version: unsupported version "3"; this Ony reads version 1` {
		t.Errorf("first line = %q", lines[0])
	}
	if !strings.HasPrefix(lines[11], `acme.yaml:18:12: floors.labels["envprod"]: want key=value`) {
		t.Errorf("last line = %q", lines[11])
	}
}

func TestParsePolicyTooLarge(t *testing.T) {
	t.Parallel()
	big := "version: 1\n#" + strings.Repeat("x", MaxPolicyBytes)
	_, err := ParsePolicy([]byte(big), "big.yaml")
	if err == nil || !strings.Contains(err.Error(), "big.yaml: policy is") {
		t.Fatalf("err = %v", err)
	}
	// Aliases cannot make a small document expensive: a thousand rules that
	// are one rule with a thousand keywords are a million values to check.
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n  add:\n    - &r {id: x, reason: payment, level: high, actions: ['*'], pattern: x, keywords: [")
	b.WriteString(strings.Repeat("k, ", 1000))
	b.WriteString("]}\n")
	b.WriteString(strings.Repeat("    - *r\n", 1000))
	_, err = ParsePolicy([]byte(b.String()), "aliases.yaml")
	var pe *PolicyErrors
	if !errors.As(err, &pe) || !strings.Contains(pe.List[len(pe.List)-1].Msg, "too large or nests too many aliases") {
		t.Fatalf("err = %v", err)
	}
}

// policyCase runs one input through a policy.
type policyCase struct {
	name    string
	in      Input
	level   Level
	reasons []Reason
	rules   []string
}

func checkPolicyCases(t *testing.T, e *Engine, cases []policyCase) {
	t.Helper()
	for _, tc := range cases {
		got := e.Derive(tc.in)
		if got.Level != tc.level || !slices.Equal(got.Reasons, tc.reasons) || !slices.Equal(got.Rules, tc.rules) {
			t.Errorf("%s: got %v %v %v, want %v %v %v", tc.name, got.Level, got.Reasons, got.Rules, tc.level, tc.reasons, tc.rules)
		}
	}
}

func TestPolicyEngine(t *testing.T) {
	t.Parallel()
	prod := map[string]string{"env": "prod"}
	for _, tc := range []struct {
		name   string
		policy string
		cases  []policyCase
	}{
		{"no policy changes nothing", "version: 1\n", []policyCase{
			{"push main", cmd("git push origin main"), Medium, rs(ReasonProtectedBranchPush), []string{"git.protected_branch_push"}},
		}},
		{"disabled rules do not fire", "version: 1\nrules: {disable: [git.protected_branch_push, label.production]}\n", []policyCase{
			{"push main", cmd("git push origin main"), Low, rs(), []string{}},
			{"force push still fires", cmd("git push -f origin main"), High, rs(ReasonForcePush), []string{"git.force_push"}},
			{"prod label", Input{Action: "x", Labels: prod}, Low, rs(), []string{}},
		}},
		{"levels lowered", "version: 1\nrules: {levels: {git.protected_branch_push: low, shell.rm_root: medium}}\n", []policyCase{
			{"push main is low, and still says why", cmd("git push origin main"), Low, rs(ReasonProtectedBranchPush),
				[]string{"git.protected_branch_push"}},
			{"rm root keeps the force rule's high", cmd("rm -rf /"), High, rs(rd),
				[]string{"shell.rm_recursive", "shell.rm_recursive_force", "shell.rm_root"}},
			{"a lowered rule cannot lower the base", Input{Action: "deploy", PayloadKind: KindCommand, Payload: "git push origin main"},
				Medium, rs(ReasonDeploy, ReasonProtectedBranchPush), []string{"git.protected_branch_push"}},
		}},
		{"levels raised", "version: 1\nrules: {levels: {shell.chmod_world_writable: critical}}\n", []policyCase{
			{"chmod 777", cmd("chmod 777 /srv"), Critical, rs(ReasonWorldWritable), []string{"shell.chmod_world_writable"}},
		}},
		{"added rules fire", `version: 1
rules:
  add:
    - id: acme.refund_all
      reason: payment
      level: critical
      actions: ["payment", "billing.*"]
      kinds: [command, text]
      keywords: [refund]
      pattern: '(?i)refund\s+--all'
    - id: acme.prod_billing
      reason: production_environment
      level: medium
      actions: ["billing.*"]
      labels: {keys: [env], values: [prod]}
`, []policyCase{
			{"refund all", Input{Action: "billing.refund", PayloadKind: KindText, Payload: "then REFUND  --all"}, Critical,
				rs(ReasonPayment), []string{"acme.refund_all"}},
			{"base and rule share a reason", Input{Action: "payment", PayloadKind: KindCommand, Payload: "refund --all"}, Critical,
				rs(ReasonPayment), []string{"acme.refund_all"}},
			{"wrong kind", Input{Action: "payment", PayloadKind: KindLog, Payload: "refund --all"}, Medium, rs(ReasonPayment), []string{}},
			{"wrong action", Input{Action: "shell.exec", PayloadKind: KindCommand, Payload: "refund --all"}, Low, rs(), []string{}},
			{"no match", Input{Action: "billing.x", PayloadKind: KindText, Payload: "refund one"}, Low, rs(), []string{}},
			{"label rule after the built-ins", Input{Action: "billing.x", Labels: map[string]string{"ENV": " Prod "}}, High,
				rs(ReasonProductionEnvironment), []string{"label.production", "acme.prod_billing"}},
		}},
		{"floors by action", `version: 1
floors:
  actions: {db.migrate: high, "infra.*": medium, "*.destroy": critical}
`, []policyCase{
			{"exact", Input{Action: "db.migrate"}, High, rs(ReasonSchemaMigration, ReasonOrgPolicy), []string{"floor:action:db.migrate"}},
			{"glob at the same level as the base", Input{Action: "infra.apply"}, Medium, rs(ReasonInfraChange, ReasonOrgPolicy),
				[]string{"floor:action:infra.*"}},
			{"two floors, file order", Input{Action: "infra.destroy"}, Critical, rs(ReasonInfraChange, ReasonOrgPolicy),
				[]string{"floor:action:infra.*", "floor:action:*.destroy"}},
			{"floor below a rule", Input{Action: "infra.x", PayloadKind: KindCommand, Payload: "terraform destroy"}, Critical,
				rs(ReasonInfraChange, ReasonInfraDestroy, ReasonOrgPolicy), []string{"infra.destroy", "floor:action:infra.*"}},
			{"no match", Input{Action: "db.query"}, Low, rs(), []string{}},
			{"case of the action", Input{Action: " DB.Migrate "}, High, rs(ReasonSchemaMigration, ReasonOrgPolicy), []string{"floor:action:db.migrate"}},
		}},
		{"floors by label", `version: 1
floors:
  labels: {env=prod: critical, "team=*": medium, "tier=gold": high}
`, []policyCase{
			{"value", Input{Action: "x", Labels: map[string]string{"Env": "PROD "}}, Critical,
				rs(ReasonProductionEnvironment, ReasonOrgPolicy), []string{"label.production", "floor:label:env=prod"}},
			{"any value", Input{Action: "x", Labels: map[string]string{"team": ""}}, Medium, rs(ReasonOrgPolicy), []string{"floor:label:team=*"}},
			{"other value", Input{Action: "x", Labels: map[string]string{"tier": "silver", "env": "staging"}}, Low, rs(), []string{}},
			{"several", Input{Action: "x", Labels: map[string]string{"tier": "gold", "team": "a"}}, High, rs(ReasonOrgPolicy),
				[]string{"floor:label:team=*", "floor:label:tier=gold"}},
		}},
		{"everything together", "version: 1\n" +
			"rules: {disable: [label.production], levels: {git.protected_branch_push: low}}\n" +
			"floors: {labels: {env=prod: high}}\n", []policyCase{
			{"push main to prod", Input{Action: "git.push", PayloadKind: KindCommand, Payload: "git push origin main", Labels: prod},
				High, rs(ReasonProtectedBranchPush, ReasonOrgPolicy), []string{"git.protected_branch_push", "floor:label:env=prod"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, e := mustPolicy(t, tc.policy)
			checkPolicyCases(t, e, tc.cases)
		})
	}
}

func TestEmptyPolicyIsDefault(t *testing.T) {
	t.Parallel()
	_, e := mustPolicy(t, "version: 1\n")
	var nilPolicy *Policy
	def, err := nilPolicy.Engine()
	if err != nil || def != Default() {
		t.Fatalf("nil policy: %v, %v", def, err)
	}
	for _, tc := range deriveCases() {
		if got, want := e.Derive(tc.in), Default().Derive(tc.in); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: policy engine %+v, default %+v", tc.name, got, want)
		}
	}
}

func TestPolicyEngineValidatesGoPolicies(t *testing.T) {
	t.Parallel()
	good := Rule{ID: "acme.x", Reason: ReasonPayment, Level: High, Actions: []string{"*"}}
	for _, tc := range []struct {
		name string
		p    Policy
		want string
	}{
		{"version", Policy{}, "unsupported version 0"},
		{"disable unknown", Policy{Version: 1, Disable: []string{"nope"}}, `disable: unknown built-in rule "nope"`},
		{"disable twice", Policy{Version: 1, Disable: []string{"shell.sudo", "shell.sudo"}}, "listed twice"},
		{"level unknown", Policy{Version: 1, Levels: []LevelOverride{{"nope", Low}}}, `levels: unknown built-in rule "nope"`},
		{"level of disabled", Policy{Version: 1, Disable: []string{"shell.sudo"}, Levels: []LevelOverride{{"shell.sudo", Low}}}, "is disabled"},
		{"level below low", Policy{Version: 1, Levels: []LevelOverride{{"shell.sudo", 0}}}, "invalid level 0"},
		{"level above critical", Policy{Version: 1, Levels: []LevelOverride{{"shell.sudo", Critical + 1}}}, "invalid level 5"},
		{"added built-in id", Policy{Version: 1, Add: []Rule{{ID: "shell.sudo", Reason: ReasonPayment, Level: High, Actions: []string{"*"}}}},
			"is a built-in rule id"},
		{"added duplicate", Policy{Version: 1, Add: []Rule{good, good}}, "duplicate id"},
		{"added bad rule", Policy{Version: 1, Add: []Rule{{ID: "acme.y", Reason: "nope", Level: High, Actions: []string{"*"}}}}, `unknown reason "nope"`},
		{"added bad id", Policy{Version: 1, Add: []Rule{{ID: "floor:x", Reason: ReasonPayment, Level: High, Actions: []string{"*"}}}}, "must be lower-case"},
		{"added bad glob", Policy{Version: 1, Add: []Rule{{ID: "a", Reason: ReasonPayment, Level: High, Actions: []string{"a?"}}}}, "action glob"},
		{"floor low", Policy{Version: 1, ActionFloors: []ActionFloor{{"deploy", Low}}}, "floor of low"},
		{"floor invalid", Policy{Version: 1, ActionFloors: []ActionFloor{{"deploy", 9}}}, "invalid level 9"},
		{"floor twice", Policy{Version: 1, ActionFloors: []ActionFloor{{"deploy", High}, {"DEPLOY", High}}}, "listed twice"},
		{"floor glob", Policy{Version: 1, ActionFloors: []ActionFloor{{"", High}}}, "empty action glob"},
		{"label floor", Policy{Version: 1, LabelFloors: []LabelFloor{{"a=b", "c", High}}}, "want a label key and a value"},
		{"label floor value", Policy{Version: 1, LabelFloors: []LabelFloor{{"env", " ", High}}}, "want a label key and a value"},
	} {
		e, err := tc.p.Engine()
		if err == nil || e != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, %v; want an error with %q", tc.name, e, err, tc.want)
		}
	}
}

// TestInputHasNoClaim pins the shape of Input: the agent's own risk claim
// has no field to travel in, so no policy or caller can hand it to Derive.
func TestInputHasNoClaim(t *testing.T) {
	t.Parallel()
	var fields []string
	typ := reflect.TypeFor[Input]()
	for i := range typ.NumField() {
		fields = append(fields, typ.Field(i).Name)
	}
	if want := []string{"Action", "PayloadKind", "Payload", "Labels"}; !slices.Equal(fields, want) {
		t.Fatalf("Input fields = %v, want %v: a new field must not carry the agent's risk claim", fields, want)
	}
}

// TestPolicyDeriveIsDeterministicAndConcurrent: the same Input under the same
// policy gets the same Assessment every time, from many goroutines at once.
// Together with TestInputHasNoClaim this is the claim independence: the
// result is a function of the Input's action, kind, payload and labels and
// of the tables, and nothing else.
func TestPolicyDeriveIsDeterministicAndConcurrent(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../configs/risk-policy.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, e := mustPolicy(t, string(data))
	inputs := []Input{
		{Action: "git.push", PayloadKind: KindCommand, Payload: "git push origin main && sudo rm -rf /", Labels: map[string]string{"env": "prod"}},
		{Action: "billing.refund", PayloadKind: KindText, Payload: "refund --all", Labels: map[string]string{"Environment": "Production", "team": "payments"}},
		{Action: "db.migrate", PayloadKind: KindDiff, Payload: "+DROP TABLE users;"},
	}
	want := make([]Assessment, len(inputs))
	for i, in := range inputs {
		want[i] = e.Derive(in)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 100*len(inputs))
	for range 100 {
		for i, in := range inputs {
			wg.Go(func() {
				if got := e.Derive(in); !reflect.DeepEqual(got, want[i]) {
					errs <- fmt.Sprintf("input %d: got %+v, want %+v", i, got, want[i])
				}
				if x := e.Explain(in); !reflect.DeepEqual(x.Assessment, want[i]) {
					errs <- fmt.Sprintf("input %d: Explain's assessment %+v, want %+v", i, x.Assessment, want[i])
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	if want[0].Level != Critical || want[1].Level != Critical || want[2].Level != Critical {
		t.Errorf("unexpected levels: %+v", want)
	}
}

func TestExamplePolicyParses(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../configs/risk-policy.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, e := mustPolicy(t, string(data))
	if len(p.Disable) == 0 || len(p.Levels) == 0 || len(p.Add) == 0 || len(p.ActionFloors) == 0 || len(p.LabelFloors) == 0 {
		t.Errorf("the example should show every feature: %+v", p)
	}
	checkPolicyCases(t, e, []policyCase{
		{"push main is low here", cmd("git push origin main"), Low, rs(ReasonProtectedBranchPush), []string{"git.protected_branch_push"}},
		{"chmod is off", cmd("chmod 777 x"), Low, rs(), []string{}},
		{"customer export", Input{Action: "shell.exec", PayloadKind: KindCommand, Payload: "pg_dump -t customers prod > c.sql"}, High,
			rs(ReasonOrgPolicy), []string{"acme.customer_export"}},
		{"schema only export", Input{Action: "shell.exec", PayloadKind: KindCommand, Payload: "pg_dump --schema-only -t customers"}, Low,
			rs(), []string{}},
	})
}

// explainEngines are the engines Explain is checked on: the default and the example policy's.
func explainEngines(t *testing.T) map[string]*Engine {
	data, err := os.ReadFile("../configs/risk-policy.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, example := mustPolicy(t, string(data))
	return map[string]*Engine{"default": Default(), "example": example}
}

// TestExplainAgreesWithDerive: a rule fires in Explain exactly when Derive
// lists it, its trace is consistent, and a fired pattern has a span that
// the pattern itself matches.
func TestExplainAgreesWithDerive(t *testing.T) {
	t.Parallel()
	inputs := []Input{
		{Action: "billing.refund", PayloadKind: KindText, Payload: "x\nrefund --all\n", Labels: map[string]string{"env": "prod"}},
		{Action: "DB.MIGRATE", PayloadKind: "weird", Payload: "ALTER TABLE t ADD c int;", Labels: map[string]string{"team": "payments"}},
	}
	for _, tc := range deriveCases() {
		inputs = append(inputs, tc.in)
	}
	for name, e := range explainEngines(t) {
		for _, in := range inputs {
			checkExplain(t, name, e, in)
		}
	}
}

func checkExplain(t *testing.T, name string, e *Engine, in Input) {
	t.Helper()
	x := e.Explain(in)
	a := e.Derive(in)
	if !reflect.DeepEqual(x.Assessment, a) {
		t.Fatalf("%s %q: Explain's assessment %+v, Derive %+v", name, in.Payload, x.Assessment, a)
	}
	var fired []string
	for _, r := range x.Rules {
		if r.Considered != (r.ActionMatch && r.KindMatch && r.LabelMatch) {
			t.Errorf("%s %s: considered %v with matches %v %v %v", name, r.ID, r.Considered, r.ActionMatch, r.KindMatch, r.LabelMatch)
		}
		if r.Fired && !r.Considered {
			t.Errorf("%s %s: fired without being considered", name, r.ID)
		}
		if r.Fired && r.Keywords == KeywordsAbsent {
			t.Errorf("%s %s: fired with its keywords absent", name, r.ID)
		}
		if r.Match != nil {
			if !r.Fired || r.Match.Start < 0 || r.Match.Start > r.Match.End || r.Match.End > len(in.Payload) {
				t.Errorf("%s %s: bad span %+v in %d bytes", name, r.ID, *r.Match, len(in.Payload))
			}
		}
		if r.Fired {
			fired = append(fired, r.ID)
		}
	}
	for _, f := range x.Floors {
		if f.Applied {
			fired = append(fired, f.ID)
		}
	}
	if !slices.Equal(fired, a.Rules) {
		t.Errorf("%s %q: Explain fired %v, Derive %v", name, in.Payload, fired, a.Rules)
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	_, e := mustPolicy(t, `version: 1
rules:
  disable: [shell.su]
  levels: {shell.sudo: critical}
  add:
    - {id: acme.refund, reason: payment, level: high, actions: ["*"], keywords: [refund], pattern: 'refund\s+--all', within: "\n"}
floors:
  actions: {"shell.*": medium}
  labels: {env=prod: high}
`)
	payload := "echo ok\nsudo rm -rf ./build\nrefund --all\n"
	x := e.Explain(Input{Action: "Shell.Exec", PayloadKind: "yaml", Payload: payload, Labels: map[string]string{"env": "dev"}})
	if x.Action != "shell.exec" || x.Kind != "" {
		t.Errorf("action %q kind %q", x.Action, x.Kind)
	}
	if x.Base != (BaseTrace{Entry: "shell.exec", Level: Low}) {
		t.Errorf("base = %+v", x.Base)
	}
	if !slices.Equal(x.Disabled, []string{"shell.su"}) {
		t.Errorf("disabled = %v", x.Disabled)
	}
	byID := map[string]RuleTrace{}
	for _, r := range x.Rules {
		byID[r.ID] = r
	}
	if _, ok := byID["shell.su"]; ok {
		t.Error("a disabled rule is traced")
	}
	span := func(id string) string {
		r := byID[id]
		if r.Match == nil {
			return "<nil>"
		}
		return payload[r.Match.Start:r.Match.End]
	}
	sudo := byID["shell.sudo"]
	if !sudo.Fired || sudo.Level != Critical || sudo.DefaultLevel != High || sudo.Origin != OriginBuiltin || sudo.Keywords != KeywordsPresent {
		t.Errorf("shell.sudo = %+v", sudo)
	}
	if got := span("shell.sudo"); got != "sudo " {
		t.Errorf("shell.sudo matched %q", got)
	}
	if got := span("shell.rm_recursive_force"); got != " rm -rf ./build" {
		t.Errorf("shell.rm_recursive_force matched %q", got)
	}
	refund := byID["acme.refund"]
	if !refund.Fired || refund.Origin != OriginPolicy || refund.DefaultLevel != High || span("acme.refund") != "refund --all" {
		t.Errorf("acme.refund = %+v, matched %q", refund, span("acme.refund"))
	}
	if r := byID["sql.drop"]; r.Fired || !r.Considered || r.Keywords != KeywordsAbsent || r.Match != nil {
		t.Errorf("sql.drop = %+v", r)
	}
	if r := byID["label.production"]; r.Fired || r.Considered || r.LabelMatch || !r.ActionMatch || r.Keywords != KeywordsNone {
		t.Errorf("label.production = %+v", r)
	}
	wantFloors := []FloorTrace{{"floor:action:shell.*", Medium, true}, {"floor:label:env=prod", High, false}}
	if !slices.Equal(x.Floors, wantFloors) {
		t.Errorf("floors = %+v", x.Floors)
	}
	if x.Assessment.Level != Critical || !slices.Contains(x.Assessment.Rules, "floor:action:shell.*") {
		t.Errorf("assessment = %+v", x.Assessment)
	}

	// An engine from New has custom rules.
	c, err := New([]Rule{{ID: "c", Reason: ReasonPayment, Level: High, Actions: []string{"x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if cx := c.Explain(Input{Action: "x"}); len(cx.Rules) != 1 || cx.Rules[0].Origin != OriginCustom || !cx.Rules[0].Fired ||
		cx.Rules[0].Match != nil || cx.Base.Entry != "" || cx.Base.Level != Low {
		t.Errorf("custom explain = %+v", cx)
	}
}

// The span is in bytes of the payload as given, even where the engine reads
// a Kelvin sign or a long s as one ASCII letter.
func TestExplainSpanOffsetsAfterFolding(t *testing.T) {
	t.Parallel()
	payload := "echo \u212a \u017f; \u212aubectl delete pod x"
	x := Default().Explain(Input{Action: "shell.exec", PayloadKind: KindCommand, Payload: payload})
	for _, r := range x.Rules {
		if r.ID != "k8s.delete" {
			continue
		}
		if !r.Fired || r.Match == nil {
			t.Fatalf("k8s.delete = %+v", r)
		}
		if got := payload[r.Match.Start:r.Match.End]; got != " \u212aubectl delete " {
			t.Fatalf("matched %q", got)
		}
		return
	}
	t.Fatal("no k8s.delete trace")
}

// TestExplainJSON pins the JSON shape and checks that no payload text leaks.
func TestExplainJSON(t *testing.T) {
	t.Parallel()
	_, e := mustPolicy(t, "version: 1\nrules: {disable: [shell.su]}\nfloors: {labels: {env=prod: high}}\n")
	const canary = "SECRET-CANARY-8c1d"
	x := e.Explain(Input{Action: "shell.exec", PayloadKind: KindCommand, Payload: "sudo echo " + canary, Labels: map[string]string{"env": "prod"}})
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), canary) {
		t.Fatalf("explanation carries payload text: %s", b)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(top)); !slices.Equal(got, []string{"action", "assessment", "base", "disabled", "floors", "kind", "rules"}) {
		t.Errorf("top-level keys = %v", got)
	}
	var rules []map[string]json.RawMessage
	if err := json.Unmarshal(top["rules"], &rules); err != nil {
		t.Fatal(err)
	}
	wantRule := []string{"action_match", "considered", "default_level", "fired", "id", "keywords", "kind_match", "label_match", "level", "match", "origin", "reason"}
	for _, r := range rules {
		if got := slices.Sorted(maps.Keys(r)); !slices.Equal(got, wantRule) {
			t.Fatalf("rule keys = %v, want %v", got, wantRule)
		}
	}
	for _, want := range []string{
		`"base":{"entry":"shell.exec","level":"low","reason":""}`,
		`{"id":"shell.sudo","origin":"builtin","reason":"privilege_escalation","level":"high","default_level":"high","action_match":true,"kind_match":true,"label_match":true,"considered":true,"keywords":"present","fired":true,"match":{"start":0,"end":5}}`,
		`"match":null`,
		`"disabled":["shell.su"]`,
		`"floors":[{"id":"floor:label:env=prod","level":"high","applied":true}]`,
		`"assessment":{"Level":"high","Reasons":["privilege_escalation","production_environment","org_policy"],"Rules":["shell.sudo","label.production","floor:label:env=prod"]}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("json lacks %s\n%s", want, b)
		}
	}
	// Empty lists are [] rather than null.
	b, _ = json.Marshal(Default().Explain(Input{}))
	for _, want := range []string{`"disabled":[]`, `"floors":[]`, `"kind":""`, `"base":{"entry":"","level":"low","reason":""}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("json lacks %s\n%s", want, b)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	data, err := os.ReadFile("../configs/risk-policy.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data))
	for _, s := range []string{
		"", "version: 1\n", "version: 1\nrules: [\n", "- a\n", "version: 1\n---\nx: 1\n", "\xff\xfe", "version: 1\n\x01",
		"version: 1\nrules:\n  disable: [shell.sudo]\n  levels: {shell.sudo: low, git.force_push: low}\n",
		"version: 1\nrules:\n  add:\n    - {id: a, reason: payment, level: high, actions: ['*'], keywords: [x], pattern: '(?m)^x', within: ';', fold: true}\n",
		"version: 1\nfloors: {actions: {'a.*': high}, labels: {'k=v': medium, 'k=*': high}}\n",
		"version: 1\nrules:\n  add:\n    - &a {id: a, reason: payment, level: high, actions: &b ['*']}\n    - *a\n",
		"version: 1\nrules: &r\n  add: *r\n",
		"version: 1\n<<: {rules: {}}\n",
		"{version: 1, ? [a]: b}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := ParsePolicy([]byte(src), "fuzz.yaml")
		if err != nil {
			var pe *PolicyErrors
			if !errors.As(err, &pe) || len(pe.List) == 0 || p != nil {
				t.Fatalf("error %T %v with policy %v", err, err, p)
			}
			for _, e := range pe.List {
				if e.File != "fuzz.yaml" || e.Line <= 0 && e.Path == "" || e.Msg == "" {
					t.Fatalf("error without a place: %+v", e)
				}
			}
			return
		}
		e, err := p.Engine()
		if err != nil {
			t.Fatalf("a parsed policy does not build: %v\n%s", err, src)
		}
		in := Input{Action: "billing.refund", PayloadKind: KindCommand, Payload: src, Labels: map[string]string{"env": "prod"}}
		checkExplain(t, "fuzz", e, in)
		if a := e.Derive(in); !a.Level.Valid() {
			t.Fatalf("level %v", a.Level)
		}
	})
}

// A policy shares Default's compiled rules; changing their levels must not
// change Default.
func TestPolicyLeavesDefaultAlone(t *testing.T) {
	t.Parallel()
	_, e := mustPolicy(t, "version: 1\nrules: {levels: {shell.sudo: low}, disable: [shell.su]}\n")
	if got := e.Derive(cmd("sudo ls")); got.Level != Low {
		t.Errorf("policy engine: %+v", got)
	}
	if got := Default().Derive(cmd("sudo ls")); got.Level != High {
		t.Errorf("Default after a policy: %+v", got)
	}
	if got := Default().Derive(cmd("su -c id")); got.Level != High {
		t.Errorf("Default after a policy: %+v", got)
	}
}
