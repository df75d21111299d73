package main

// Tests of `ony ladder validate` and `ony ladder explain`, calling cmdLadder directly, plus one run
// of the binary to check the command is registered.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const exampleLadders = "../../configs/ladders"

// ladderRun runs cmdLadder and returns its output and the exit status run would give.
func ladderRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cmdLadder(args, &out, &errOut)
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

const goodLadder = `name: good
steps:
  - {channels: [console], targets: [role:admin], wait: 10m}
`

func TestLadderValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, goodLadder+"---\nname: other\ndefault: true\n"+goodLadder[len("name: good\n"):])
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "name: Bad\nsteps:\n  - {channels: [slak], targets: [role:viewer], wait: 10m}\nrepaet: 1\n")

	out, errOut, code := ladderRun(t, "validate", good)
	if code != 0 || out != good+": ok (2 ladders: good, other)\n" || errOut != "" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	out, errOut, code = ladderRun(t, "validate", exampleLadders, good, bad)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	if want := exampleLadders + ": ok (3 ladders: business-hours, critical-production, default)\n" + good + ": ok (2 ladders: good, other)\n"; out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	want := bad + `:1:7: name: ladder name "Bad" must be 1 to 63 lower-case letters, digits, '_' or '-', starting with a letter or digit
` + bad + `:3:17: steps[0].channels[0]: unknown channel "slak" (did you mean "slack"?); channels are console, webhook, slack, telegram, sms, call
` + bad + `:3:34: steps[0].targets[0]: viewers cannot decide handoffs, so role:viewer would reach nobody who can act; use role:admin or role:member
` + bad + `:4:1: repaet: unknown key (did you mean "repeat"?); known keys: name, order, default, match, steps, repeat, end
ony: 4 problem(s) in ` + bad + "\n"
	if errOut != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
	}

	// A directory is one collection: a name defined in two files is an error there.
	dup := t.TempDir()
	writeFile(t, filepath.Join(dup, "a.yaml"), goodLadder)
	writeFile(t, filepath.Join(dup, "b.yml"), "# again\n"+goodLadder)
	_, errOut, code = ladderRun(t, "validate", dup)
	mustContain(t, "validate dir", errOut, filepath.Join(dup, "b.yml")+`:2:7: name: ladder "good" is already defined at `+filepath.Join(dup, "a.yaml")+":1\n")
	if code != 1 {
		t.Errorf("exit %d", code)
	}

	empty := t.TempDir()
	if out, _, code := ladderRun(t, "validate", empty); code != 0 || out != empty+": ok (no ladders: the built-in ladder applies)\n" {
		t.Errorf("empty dir: exit %d, %s", code, out)
	}

	missing := filepath.Join(dir, "missing.yaml")
	_, errOut, code = ladderRun(t, "validate", missing)
	if code != 1 || !strings.HasPrefix(errOut, missing+": no such file or directory\n") {
		t.Errorf("missing file: exit %d\n%s", code, errOut)
	}
}

func TestLadderUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "usage:\n  ony ladder validate"},
		{[]string{"frobnicate"}, `unknown ladder command "frobnicate"`},
		{[]string{"validate"}, "usage: ony ladder validate FILE|DIR..."},
		{[]string{"validate", "--nope", "x"}, "flag provided but not defined: -nope"},
		{[]string{"explain", "--action", "a"}, "--risk is required"},
		{[]string{"explain", "--risk", "severe", "--action", "a"}, `--risk "severe": use low, medium, high or critical`},
		{[]string{"explain", "--risk", "low"}, "--action is required"},
		{[]string{"explain", "--risk", "low", "--action", "a", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"explain", "--risk", "low", "--action", "a", "--timeout", "soon"}, `invalid value "soon" for flag -timeout`},
		{[]string{"explain", "--risk", "low", "--action", "a", "--label", "novalue"}, `want KEY=VALUE, got "novalue"`},
		{[]string{"explain", "--risk", "low", "--action", "a", "--dir", "d", "f.yaml"}, "give ladder files or --dir, not both"},
		{[]string{"explain", "--risk", "low", "--action", "a", "--config", "c", "f.yaml"}, "give ladder files or --config, not both"},
		{[]string{"explain", "--risk", "low", "--action", "a", "--config", "c", "--dir", "d"}, "give --dir or --config, not both"},
	} {
		_, errOut, code := ladderRun(t, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("ony ladder %s: exit %d, want 2 and %q\n%s", strings.Join(tt.args, " "), code, tt.want, errOut)
		}
	}
	if out, _, code := ladderRun(t, "help"); code != 0 || !strings.Contains(out, "ony ladder explain") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
}

func TestLadderExplain(t *testing.T) {
	t.Parallel()
	out, errOut, code := ladderRun(t, "explain", "--dir", exampleLadders, "--risk", "critical", "--action", "db.migrate", "--label", "env=prod", "--timeout", "90m")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	file := filepath.Join(exampleLadders, "critical-production.yaml")
	want := `handoff   risk critical, action db.migrate, labels env=prod, timeout 1h30m
ladders   critical-production, business-hours, default (from ` + exampleLadders + `)
selected  critical-production: risk is critical (wanted high or critical); label env=prod matches prod*

ladder critical-production (file:` + file + `, order 10)
  match    risk high or critical; labels env=prod*
  climbs   2 times, 10m each, then the handoff expires
  +0s      notify  slack, telegram → group:oncall, slack:#incidents  (step 1 chat, climb 1 of 2)
  +2m      notify  sms → group:oncall  (step 2 text, climb 1 of 2)
  +5m      notify  call → ana@example.com, ben@example.com  (step 3 call, climb 1 of 2, ignores quiet hours at risk ≥ critical)
  +6m      redial  call → ana@example.com, ben@example.com (attempt 1 of 2)
  +7m      redial  call → ana@example.com, ben@example.com (attempt 2 of 2)
  +10m     notify  slack, telegram → group:oncall, slack:#incidents  (step 1 chat, climb 2 of 2)
  +12m     notify  sms → group:oncall  (step 2 text, climb 2 of 2)
  +15m     notify  call → ana@example.com, ben@example.com  (step 3 call, climb 2 of 2, ignores quiet hours at risk ≥ critical)
  +16m     redial  call → ana@example.com, ben@example.com (attempt 1 of 2)
  +17m     redial  call → ana@example.com, ben@example.com (attempt 2 of 2)
  +20m     end     the ladder ran out; nobody decided, so the handoff expires
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}

	// The ladders it skipped, and why; flags after the arguments work too.
	out, errOut, code = ladderRun(t, "explain", exampleLadders, "--risk", "medium", "--action", "shell.exec", "--timeout", "30m")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	mustContain(t, "explain default", out,
		"skipped   critical-production: risk is medium (wanted high or critical)\n",
		"skipped   business-hours: action shell.exec matches none of deploy.*\n",
		"selected  default: the default ladder, since no other matches\n",
		"  +25m     notify  console, slack → group:oncall  (step 1 chat, climb 2 of 2)\n",
		"  +30m     expire  nobody decided\n")
	mustNotContain(t, "explain default", out, "+35m")

	out, _, code = ladderRun(t, "explain", "--risk", "low", "--action", "deploy.api", "--dir", exampleLadders)
	if code != 0 {
		t.Fatal(code)
	}
	mustContain(t, "explain business-hours", out,
		"selected  business-hours: risk is low (wanted low or medium); action deploy.api matches deploy.*\n",
		"  +0s      notify  console, slack → group:dev  (step 1 chat)\n",
		"  +1h      expire  nobody decided\n")
}

func TestLadderExplainSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	only := filepath.Join(dir, "only.yaml")
	writeFile(t, only, "name: only\nmatch: {risk: high}\n"+goodLadder[len("name: good\n"):])

	// Files given, nothing matches, no default: the built-in ladder.
	out, errOut, code := ladderRun(t, "explain", only, "--risk", "low", "--action", "a")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	mustContain(t, "explain builtin", out,
		"ladders   only (from "+only+")\n",
		"skipped   only: risk is low (wanted high)\n",
		"selected  builtin: no ladder matches and none is default, so the built-in one applies\n",
		"ladder builtin (builtin, order 100)\n",
		"  +0s      notify  console → role:admin, role:member  (step 1)\n")

	// The configuration's escalation.ladders_dir.
	cfg := filepath.Join(t.TempDir(), "ony.yaml")
	writeFile(t, cfg, "escalation:\n  ladders_dir: "+dir+"\n")
	out, errOut, code = ladderRun(t, "explain", "--config", cfg, "--risk", "HIGH", "--action", "a")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	mustContain(t, "explain --config", out,
		"handoff   risk high, action a, timeout 1h\n",
		"ladders   only (from escalation.ladders_dir "+dir+")\n",
		"selected  only: risk is high (wanted high)\n")

	// Broken ladders: every mistake, exit 1.
	other := t.TempDir()
	bad := filepath.Join(other, "bad.yaml")
	writeFile(t, bad, "name: bad\nsteps: {}\nend: never\n")
	_, errOut, code = ladderRun(t, "explain", only, bad, "--risk", "low", "--action", "a")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	mustContain(t, "explain bad", errOut,
		bad+":2:8: steps: expected a list, got a mapping\n",
		bad+`:3:6: end: end "never" must be expire`,
		"ony: 2 problem(s) in the ladders\n")

	// A name in two files given as arguments.
	again := filepath.Join(other, "again.yaml")
	writeFile(t, again, "name: only\n"+goodLadder[len("name: good\n"):])
	_, errOut, code = ladderRun(t, "explain", only, again, "--risk", "low", "--action", "a")
	if code != 1 || !strings.Contains(errOut, again+`:1:7: name: ladder "only" is already defined at `+only+":1") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
}

// TestLadderExplainNoConfig uses whatever configuration the environment gives, which is none in a
// clean environment: the built-in ladder.
func TestLadderExplainNoConfig(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"ONY_CONFIG", "ONY_ESCALATION_LADDERS_DIR"} {
		if os.Getenv(k) != "" {
			t.Skipf("%s is set", k)
		}
	}
	out, errOut, code := ladderRun(t, "explain", "--risk", "critical", "--action", "db.drop")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	mustContain(t, "explain", out, "ladders   none configured: the built-in ladder applies\n", "selected  builtin: ")
}

// TestLadderCommandRegistered runs the binary, so that the dispatch in main is covered too.
func TestLadderCommandRegistered(t *testing.T) {
	t.Parallel()
	abs, err := filepath.Abs(exampleLadders)
	if err != nil {
		t.Fatal(err)
	}
	r := runOny(t, nil, "", "ladder", "validate", abs)
	if r.code != 0 || !strings.Contains(r.stdout, abs+": ok (3 ladders: ") {
		t.Fatalf("%s", r)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, "name: x\n")
	r = runOny(t, nil, "", "ladder", "validate", bad)
	if r.code != 1 || !strings.Contains(r.stderr, bad+":1:1: steps: missing; a ladder needs at least one step\n") {
		t.Fatalf("%s", r)
	}
}
