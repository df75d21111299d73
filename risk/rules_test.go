package risk

import (
	"strings"
	"testing"
)

func TestBuiltinTablesValidate(t *testing.T) {
	t.Parallel()
	if _, err := NewWithBase(DefaultBase(), DefaultRules()); err != nil {
		t.Fatalf("built-in tables are invalid:\n%v", err)
	}
	if Default() == nil || Default() != Default() {
		t.Fatal("Default should build the engine once")
	}
	seen := map[string]bool{}
	for _, r := range DefaultRules() {
		if seen[r.ID] {
			t.Errorf("duplicate built-in id %s", r.ID)
		}
		seen[r.ID] = true
		if r.Pattern != "" && len(r.Keywords) == 0 {
			t.Errorf("%s has a pattern but no prefilter keywords", r.ID)
		}
	}
}

func TestDefaultRulesIsACopy(t *testing.T) {
	t.Parallel()
	rules := DefaultRules()
	rules[0].Level = Low
	rules[0].Actions[0] = "nothing"
	if DefaultRules()[0].Level == Low || DefaultRules()[0].Actions[0] == "nothing" {
		t.Fatal("DefaultRules shares state between calls")
	}
	if rules[1].Actions[0] == "nothing" {
		t.Fatal("rules of one table share slices")
	}
	base := DefaultBase()
	base[0].Level = Critical
	if DefaultBase()[0].Level == Critical {
		t.Fatal("DefaultBase shares state between calls")
	}
}

func TestNewReportsEveryBadRule(t *testing.T) {
	t.Parallel()
	good := Rule{ID: "ok", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Pattern: `drop`}
	rules := []Rule{
		good,
		{ID: "ok", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}},                        // duplicate id
		{ID: "bad.reason", Reason: "nope", Level: High, Actions: []string{"*"}},                       // unknown reason
		{ID: "bad.regexp", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Pattern: `(a`}, // bad regexp
		{ID: "bad.level", Reason: ReasonSQLDrop, Level: 0, Actions: []string{"*"}},                    // bad level
		{ID: "bad.level.high", Reason: ReasonSQLDrop, Level: Critical + 1, Actions: []string{"*"}},
		{ID: "bad.unless", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Pattern: "x", Unless: []string{`[`}},
		{ID: "no.actions", Reason: ReasonSQLDrop, Level: High},
		{ID: "bad.kind", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Kinds: []string{"yaml"}},
		{ID: "bad.within", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Pattern: "x", Within: "ab"},
		{ID: "keyword.sep", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Pattern: "x", Within: ";", Keywords: []string{"a;b"}},
		{ID: "keyword.utf8", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Pattern: "x", Keywords: []string{"löschen"}},
		{ID: "keyword.nopattern", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Keywords: []string{"x"}},
		{ID: "label.novalues.nokeys", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Label: LabelSelector{Values: []string{"x"}}},
		{ID: "", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}},
		{ID: "bad.require", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Pattern: "x", Require: []string{`*`}},
		{ID: "keyword.begintext", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Pattern: `^drop`, Keywords: []string{"drop"}},
		{ID: "fold.upper", Reason: ReasonSQLDrop, Level: High, Actions: []string{"*"}, Pattern: `x|(?i:y)|DROP`, Fold: true},
	}
	e, err := New(rules)
	if err == nil || e != nil {
		t.Fatalf("New accepted bad rules: %v", e)
	}
	msg := err.Error()
	for _, want := range []string{
		`rule 1 "ok": duplicate id (first at rule 0)`,
		`rule 2 "bad.reason": unknown reason "nope"`,
		`rule 3 "bad.regexp": bad pattern`,
		`rule 4 "bad.level": invalid level 0`,
		`rule 5 "bad.level.high": invalid level 5`,
		`rule 6 "bad.unless": bad unless`,
		`rule 7 "no.actions": no actions`,
		`rule 8 "bad.kind": unknown payload kind "yaml"`,
		`rule 9 "bad.within": within "ab"`,
		`rule 10 "keyword.sep": keyword "a;b" contains a newline or the within separator`,
		`rule 11 "keyword.utf8": keyword "löschen" is not ASCII`,
		`rule 12 "keyword.nopattern": keywords, require, unless, within, fold and wordstart need a pattern`,
		`rule 13 "label.novalues.nokeys": label values without keys`,
		`rule 14 "": empty id`,
		`rule 15 "bad.require": bad require`,
		`rule 16 "keyword.begintext": pattern uses \A or a non-multiline ^`,
		`rule 17 "fold.upper": pattern has an upper-case letter`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q; got:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, `rule 0 `) {
		t.Errorf("the good rule was reported:\n%s", msg)
	}
	if n := strings.Count(msg, "\n") + 1; n != len(rules)-1 {
		t.Errorf("got %d error lines, want one per bad rule (%d):\n%s", n, len(rules)-1, msg)
	}
}

func TestNewCollectsAllProblemsOfOneRule(t *testing.T) {
	t.Parallel()
	_, err := New([]Rule{{ID: "x", Reason: "nope", Level: 9, Actions: []string{"*"}, Pattern: "("}})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"unknown reason", "invalid level 9", "bad pattern"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestNewWithBaseRejectsBadBase(t *testing.T) {
	t.Parallel()
	_, err := NewWithBase([]ActionBase{
		{Action: "", Level: Low},
		{Action: "pay", Level: 0},
		{Action: "x", Level: Low, Reason: "nope"},
	}, nil)
	if err == nil {
		t.Fatal("accepted a bad base table")
	}
	for _, want := range []string{`base 0 "": empty action`, `base 1 "pay": invalid level 0`, `base 2 "x": unknown reason "nope"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestCustomTables(t *testing.T) {
	t.Parallel()
	e, err := NewWithBase(
		[]ActionBase{
			{Action: "infra.plan", Level: Low},
			{Action: "infra.*", Level: High, Reason: ReasonInfraChange},
		},
		[]Rule{
			{ID: "only.diffs", Reason: ReasonSQLDrop, Level: Critical, Actions: []string{"db.*"}, Kinds: []string{KindDiff},
				Keywords: []string{"drop"}, Pattern: `(?i)drop`},
			{ID: "team.present", Reason: ReasonProductionEnvironment, Level: Medium, Actions: []string{"*"},
				Label: LabelSelector{Keys: []string{"Team"}}},
			{ID: "action.only", Reason: ReasonPayment, Level: Medium, Actions: []string{"billing.*"}},
			{ID: "folded", Reason: ReasonSQLDrop, Level: Critical, Actions: []string{"sql.*"}, Within: ";",
				Keywords: []string{"purge"}, Pattern: `purge\s+all\b`, Fold: true, WordStart: true},
			{ID: "both.words", Reason: ReasonFileDelete, Level: High, Actions: []string{"files.*"}, Within: "\n",
				Keywords: []string{"wipe"}, Pattern: `(?m)^wipe .*`, Require: []string{`--all`, `--yes`}, Unless: []string{`--dry-run`}},
		})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		in    Input
		level Level
		rules []string
	}{
		{"first base entry wins", Input{Action: "infra.plan"}, Low, []string{}},
		{"later base entry", Input{Action: "infra.apply"}, High, []string{}},
		{"kind filter hit", Input{Action: "db.x", PayloadKind: KindDiff, Payload: "DROP"}, Critical, []string{"only.diffs"}},
		{"kind filter miss", Input{Action: "db.x", PayloadKind: KindText, Payload: "DROP"}, Low, []string{}},
		{"action filter miss", Input{Action: "shell.exec", PayloadKind: KindDiff, Payload: "DROP"}, Low, []string{}},
		{"label presence", Input{Action: "x", Labels: map[string]string{"TEAM": ""}}, Medium, []string{"team.present"}},
		{"action only rule", Input{Action: "billing.refund"}, Medium, []string{"action.only"}},
		{"fold", Input{Action: "sql.x", Payload: "x; PURGE  All;"}, Critical, []string{"folded"}},
		{"word start", Input{Action: "sql.x", Payload: "xpurge all"}, Low, []string{}},
		{"word start after separator", Input{Action: "sql.x", Payload: "x;purge all"}, Critical, []string{"folded"}},
		{"require all, any order", Input{Action: "files.x", Payload: "ls\nwipe --yes /data --all"}, High, []string{"both.words"}},
		{"require missing", Input{Action: "files.x", Payload: "wipe --yes /data"}, Low, []string{}},
		{"require split over lines", Input{Action: "files.x", Payload: "wipe --yes\nwipe --all"}, Low, []string{}},
		{"unless", Input{Action: "files.x", Payload: "wipe --all --yes --dry-run"}, Low, []string{}},
		{"line start only", Input{Action: "files.x", Payload: "echo wipe --all --yes"}, Low, []string{}},
	} {
		got := e.Derive(tc.in)
		if got.Level != tc.level || strings.Join(got.Rules, ",") != strings.Join(tc.rules, ",") {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, got.Level, got.Rules, tc.level, tc.rules)
		}
	}
}
