package main

// Tests of `ony risk explain` and `ony risk check-policy`, calling cmdRisk directly.

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/ony-ai/ony/risk"
)

const examplePolicy = "../../configs/risk-policy.example.yaml"

// riskRun runs cmdRisk and returns its output and the exit status run would give.
func riskRun(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cmdRisk(args, strings.NewReader(stdin), &out, &errOut)
	switch ee := (*exitError)(nil); {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
		errOut.WriteString("ony: " + ee.msg + "\n")
	default:
		code = 1
		errOut.WriteString("ony: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), code
}

func TestRiskExplainTable(t *testing.T) {
	t.Parallel()
	payload := filepath.Join(t.TempDir(), "payload.sh")
	writeFile(t, payload, "cd /srv\nsudo rm -rf ./build\ngit push origin main\n")
	out, errOut, code := riskRun(t, "", "explain", "--action", "shell.exec", "--kind", "command", payload)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mustContain(t, "explain", squash(out),
		"action shell.exec\nkind command\npolicy (none: built-in rules)\nbase low (action shell.exec)\n",
		"fired rules (4 of 25)\n RULE LEVEL REASON MATCH\n",
		" shell.rm_recursive medium recursive_delete \" rm -rf ./build\"\n",
		" shell.rm_recursive_force high recursive_delete \" rm -rf ./build\"\n",
		" shell.sudo high privilege_escalation \"sudo \"\n",
		" git.protected_branch_push medium protected_branch_push \"git push origin main\"\n",
		"\nfinal high\nreasons recursive_delete, privilege_escalation, protected_branch_push\n",
		"rules shell.rm_recursive, shell.rm_recursive_force, shell.sudo, git.protected_branch_push\n",
	)
	mustNotContain(t, "explain without --all", out, "sql.drop", "floors")
}

func TestRiskExplainPolicyFromStdin(t *testing.T) {
	t.Parallel()
	out, errOut, code := riskRun(t, "git push origin main\nchmod 777 /srv\n",
		"explain", "--policy", examplePolicy, "--action", "git.push", "--kind", "command", "--label", "env=prod", "--label", "team=web", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mustContain(t, "explain", squash(out),
		"policy "+examplePolicy+"\n",
		"disabled shell.chmod_world_writable\n",
		" git.protected_branch_push low (was medium) protected_branch_push \"git push origin main\"\n",
		" label.production high production_environment -\n",
		"floors\n floor:action:db.migrate high not applied\n floor:action:infra.* medium not applied\n"+
			" floor:label:env=prod high applied\n floor:label:team=payments medium not applied\n",
		"final high\nreasons protected_branch_push, production_environment, org_policy\n",
		"rules git.protected_branch_push, label.production, floor:label:env=prod\n",
	)
	mustNotContain(t, "explain", squash(out), " shell.chmod_world_writable ")
}

func TestRiskExplainAll(t *testing.T) {
	t.Parallel()
	out, errOut, code := riskRun(t, "please drop it", "explain", "--all", "--action", "db.query", "--kind", "log", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mustContain(t, "explain --all", squash(out), "rules (25)\n RULE ORIGIN LEVEL REASON OUTCOME MATCH\n",
		" sql.drop builtin critical sql_drop no match -\n",
		" shell.sudo builtin high privilege_escalation no keyword -\n",
		" label.production builtin high production_environment skipped: labels -\n",
		"final low\n")
}

func TestRiskExplainTruncatesMatches(t *testing.T) {
	t.Parallel()
	long := "rm -rf " + strings.Repeat("a", 100)
	out, errOut, code := riskRun(t, long, "explain", "--action", "shell.exec", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mustContain(t, "explain", out, `"`+long[:60]+`"…`)
	mustNotContain(t, "explain", out, long[:61])
}

func TestRiskExplainJSON(t *testing.T) {
	t.Parallel()
	const canary = "SECRET-CANARY-5e0b"
	payload := "sudo deploy --token " + canary
	// Flags may follow the payload argument.
	out, errOut, code := riskRun(t, payload, "explain", "-", "--json", "--action", "Deploy", "--label", "env=prod", "--policy", examplePolicy)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mustNotContain(t, "explain --json", out, canary)
	var got risk.Explanation
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	p, err := risk.ParsePolicy(mustRead(t, examplePolicy), examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.Engine()
	if err != nil {
		t.Fatal(err)
	}
	want := e.Explain(risk.Input{Action: "Deploy", Payload: payload, Labels: map[string]string{"env": "prod"}})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("json explanation differs from Explain:\n got %+v\nwant %+v", got, want)
	}
	if got.Assessment.Level != risk.Critical {
		t.Errorf("level = %v (sudo is critical under the example policy)", got.Assessment.Level)
	}
}

func TestRiskExplainErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "version: 1\nrules:\n  disable: [nope]\nfloors:\n  actions: {deploy: huge}\n")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no subcommand", nil, 2, []string{"usage:", "ony risk explain"}},
		{"unknown subcommand", []string{"score"}, 2, []string{`unknown risk command "score"`}},
		{"no action", []string{"explain"}, 2, []string{"--action is required"}},
		{"bad label", []string{"explain", "--action", "x", "--label", "env"}, 2, []string{`want KEY=VALUE, got "env"`}},
		{"label twice", []string{"explain", "--action", "x", "--label", "a=1", "--label", "a=2"}, 2, []string{`label "a" given twice`}},
		{"unknown flag", []string{"explain", "--action", "x", "--config", "c.yaml"}, 2, []string{"flag provided but not defined: -config"}},
		{"two payloads", []string{"explain", "--action", "x", "a", "b"}, 2, []string{`unexpected argument "b"`}},
		{"missing payload", []string{"explain", "--action", "x", filepath.Join(dir, "nope")}, 1, []string{"payload: open", "no such file"}},
		{"bad policy", []string{"explain", "--action", "x", "--policy", bad}, 2, []string{
			bad + `:3:13: rules.disable[0]: unknown built-in rule "nope"`,
			bad + `:5:21: floors.actions["deploy"]: bad level "huge"`,
			bad + ": 2 problem(s) in the risk policy",
		}},
		{"missing policy", []string{"explain", "--action", "x", "--policy", filepath.Join(dir, "none.yaml")}, 2, []string{
			"none.yaml: cannot read the risk policy: no such file or directory",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := riskRun(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut)
			}
			mustContain(t, "stderr", errOut, tc.want...)
			if out != "" {
				t.Errorf("stdout on error: %s", out)
			}
		})
	}
}

func TestRiskCheckPolicy(t *testing.T) {
	t.Parallel()
	out, errOut, code := riskRun(t, "", "check-policy", examplePolicy)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mustContain(t, "check-policy", out, examplePolicy+": ok (1 rule(s) disabled, 2 level(s) changed, 2 rule(s) added, 4 floor(s))")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, `version: 1
rules:
  levels: {shell.sudo: severe}
  add:
    - id: acme.x
      reason: paymnt
      level: high
      actions: ["*"]
      pattern: 'a('
floors:
  labels: {envprod: high}
`)
	out, errOut, code = riskRun(t, "", "check-policy", bad)
	if code != 2 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	want := []string{
		bad + `:3:24: rules.levels["shell.sudo"]: bad level "severe"; use low, medium, high or critical`,
		bad + `:6:15: rules.add[0].reason: unknown reason "paymnt" (did you mean "payment"?)`,
		bad + `:9:16: rules.add[0].pattern: bad regexp: error parsing regexp: missing closing ): ` + "`a(`",
		bad + `:11:12: floors.labels["envprod"]: want key=value`,
		"ony: " + bad + ": 4 problem(s) in the risk policy",
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), errOut)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}

	for _, args := range [][]string{{"check-policy"}, {"check-policy", "a", "b"}} {
		if _, errOut, code := riskRun(t, "", args...); code != 2 || !strings.Contains(errOut, "usage: ony risk check-policy FILE") {
			t.Errorf("%v: exit %d, %s", args, code, errOut)
		}
	}
	if _, errOut, code := riskRun(t, "", "check-policy", filepath.Join(t.TempDir(), "none")); code != 2 ||
		!strings.Contains(errOut, "cannot read the risk policy") {
		t.Errorf("missing file: exit %d, %s", code, errOut)
	}
}

func TestRiskParseArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"a"}, []string{"a"}, false},
		{[]string{"--json", "a"}, []string{"a"}, true},
		{[]string{"a", "--json"}, []string{"a"}, true},
		{[]string{"-", "--json", "b"}, []string{"-", "b"}, true},
		{[]string{"--", "--json"}, []string{"--json"}, false},
		{[]string{"a", "--", "-b"}, []string{"a", "-b"}, false},
	} {
		fs := riskFlags("t", &bytes.Buffer{})
		j := fs.Bool("json", false, "")
		pos, err := parseArgs(fs, tc.args)
		if err != nil || !reflect.DeepEqual(pos, tc.pos) || *j != tc.json {
			t.Errorf("%q: got %q json=%v err=%v, want %q json=%v", tc.args, pos, *j, err, tc.pos, tc.json)
		}
	}
}

// squash collapses runs of spaces, so that tests do not depend on column widths.
func squash(s string) string {
	return regexp.MustCompile(` +`).ReplaceAllString(s, " ")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := readPolicyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
