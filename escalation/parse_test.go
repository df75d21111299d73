package escalation

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// parseErrs parses src as f.yaml and returns its error lines without the file name; it fails the
// test when src parses.
func parseErrs(t *testing.T, src string) []string {
	t.Helper()
	ls, err := Parse([]byte(src), "f.yaml", testKinds)
	if err == nil {
		t.Fatalf("parsed, want errors; got %d ladder(s)", len(ls))
	}
	var pe *Errors
	if !errors.As(err, &pe) {
		t.Fatalf("error %T %v, want *Errors", err, err)
	}
	out := make([]string, len(pe.List))
	for i, e := range pe.List {
		if e.File != "f.yaml" {
			t.Errorf("error %q has file %q", e.Error(), e.File)
		}
		out[i] = strings.TrimLeft(strings.TrimPrefix(e.Error(), "f.yaml:"), " ")
	}
	return out
}

// mustParse parses src and fails the test on any error.
func mustParse(t *testing.T, src string) []*Ladder {
	t.Helper()
	ls, err := Parse([]byte(src), "f.yaml", testKinds)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return ls
}

// wantErrs checks that got has exactly one line starting with each of want, in order.
func wantErrs(t *testing.T, got, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Errorf("errors:\n  %s\nwant lines starting with:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// one is the smallest valid ladder's steps, to append to documents that test something else.
const one = "steps:\n  - {channels: [console], targets: [role:admin], wait: 5m}\n"

func TestParseValid(t *testing.T) {
	t.Parallel()
	admin := Target{Kind: TargetRole, Value: "admin"}
	console := Step{Channels: []string{"console"}, Targets: []Target{admin}, Wait: 5 * time.Minute, Quiet: QuietRespect}
	tests := []struct {
		name string
		src  string
		want []*Ladder
	}{
		{
			name: "minimal, with defaults",
			src:  "name: a\n" + one,
			want: []*Ladder{{Name: "a", Origin: "file:f.yaml", Order: 100, End: EndExpire, Steps: []Step{console}}},
		},
		{
			name: "single risk string, end wait, wait omitted",
			src:  "name: a\nmatch: {risk: HIGH}\nsteps:\n  - {channels: [console], targets: [role:admin]}\nend: wait\n",
			want: []*Ladder{{Name: "a", Origin: "file:f.yaml", Order: 100, End: EndWait, Match: Match{Risk: []string{"high"}},
				Steps: []Step{{Channels: []string{"console"}, Targets: []Target{admin}, Quiet: QuietRespect}}}},
		},
		{
			name: "order 0, default false, label value that YAML reads as a number",
			src:  "name: a\norder: 0\ndefault: false\nmatch: {labels: {tier: 1}}\n" + one,
			want: []*Ladder{{Name: "a", Origin: "file:f.yaml", End: EndExpire, Match: Match{Labels: map[string]string{"tier": "1"}}, Steps: []Step{console}}},
		},
		{
			name: "two documents and empty ones around them",
			src:  "---\n---\nname: a\n" + one + "---\nname: b\ndefault: true\n" + one + "---\n",
			want: []*Ladder{
				{Name: "a", Origin: "file:f.yaml", Order: 100, End: EndExpire, Steps: []Step{console}},
				{Name: "b", Origin: "file:f.yaml", Order: 100, Default: true, End: EndExpire, Steps: []Step{console}},
			},
		},
		{
			name: "aliases are followed",
			src:  "name: a\nsteps:\n  - {channels: &c [console], targets: &t [role:admin], wait: 1m}\n  - {channels: *c, targets: *t, wait: &w 2m}\nrepeat: 1\n",
			want: []*Ladder{{Name: "a", Origin: "file:f.yaml", Order: 100, End: EndExpire, Repeat: 1, Steps: []Step{
				{Channels: []string{"console"}, Targets: []Target{admin}, Wait: time.Minute, Quiet: QuietRespect},
				{Channels: []string{"console"}, Targets: []Target{admin}, Wait: 2 * time.Minute, Quiet: QuietRespect},
			}}},
		},
		{
			name: "a redial shorter than the last wait",
			src:  "name: a\nsteps:\n  - {channels: [call], targets: [ana@example.com], wait: 61s, redial: {times: 2, gap: 30s}}\n",
			want: []*Ladder{{Name: "a", Origin: "file:f.yaml", Order: 100, End: EndExpire, Steps: []Step{
				{Channels: []string{"call"}, Targets: []Target{{Kind: TargetUser, Value: "ana@example.com"}}, Wait: 61 * time.Second,
					Quiet: QuietRespect, Redial: Redial{Times: 2, Gap: 30 * time.Second}},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustParse(t, tt.src)
			if !reflect.DeepEqual(got, tt.want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				w, _ := json.MarshalIndent(tt.want, "", "  ")
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func TestParseFullFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join("testdata", "ladders", "valid", "full.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := Parse(data, path, testKinds)
	if err != nil {
		t.Fatal(err)
	}
	want := &Ladder{
		Name: "full", Origin: "file:" + path, Order: 7, Repeat: 2, End: EndWait,
		Match: Match{Risk: []string{"critical"}, Actions: []string{"db.*", "deploy.web"}, Labels: map[string]string{"env": "prod*", "team": "payments"}},
		Steps: []Step{
			{
				Name:     "chat",
				Channels: []string{"console", "slack", "telegram", "webhook"},
				Targets: []Target{
					{TargetUser, "ana@example.com"}, {TargetGroup, "dba"}, {TargetRole, "admin"}, {TargetKind("slack"), "#ops"},
					{TargetKind("slack"), "C0123ABCD"}, {TargetKind("telegram"), "-1001234"}, {TargetKind("telegram"), "@ops_room"}, {TargetKind("webhook"), "teams"},
				},
				Wait:      90 * time.Second,
				Quiet:     QuietIgnore,
				Providers: map[string][]string{"slack": {"primary"}, "telegram": {"bot-a", "bot_b"}},
			},
			{
				Name:            "call",
				Channels:        []string{"sms", "call"},
				Targets:         []Target{{TargetRole, "member"}},
				Wait:            90 * time.Minute,
				Quiet:           QuietRespect,
				OverrideQuietAt: "high",
				Redial:          Redial{Times: 3, Gap: 10 * time.Minute},
				Providers:       map[string][]string{"sms": {"twilio", "telnyx"}, "call": {"twilio"}},
			},
		},
	}
	if len(ls) != 1 || !reflect.DeepEqual(ls[0], want) {
		g, _ := json.MarshalIndent(ls, "", "  ")
		t.Errorf("got\n%s", g)
	}
	if got := ls[0].TeamTargets("webhook"); !reflect.DeepEqual(got, []string{"teams"}) {
		t.Errorf("WebhookNames = %v", got)
	}
	// The JSON form is what gets frozen onto handoffs: it must read back the same.
	b, err := json.Marshal(ls[0])
	if err != nil {
		t.Fatal(err)
	}
	var back Ladder
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, want) {
		t.Errorf("JSON round trip: %v\n%s", err, b)
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	step := "  - {channels: [console], targets: [role:admin], wait: 5m}\n"
	tests := []struct {
		name string
		src  string
		want []string // each error line, after "f.yaml:", starts with one of these
	}{
		{"empty file", "", []string{"1:1: no ladder in the file"}},
		{"only comments", "# nothing\n", []string{"1:1: no ladder in the file"}},
		{"not a mapping", "- a\n", []string{"1:1: a ladder must be a mapping (name, steps, ...), got a list"}},
		{"syntax error", "name: a\nsteps: [\n", []string{"2: invalid YAML: did not find expected node content"}},
		{"tab indentation", "name: a\n\tsteps: []\n", []string{"2: invalid YAML: found a tab character"}},
		{"missing name and steps", "order: 3\n", []string{"1:1: name: missing; every ladder needs a name", "1:1: steps: missing; a ladder needs at least one step"}},
		{"bad name", "name: Ops\n" + one, []string{`1:7: name: ladder name "Ops" must be 1 to 63 lower-case`}},
		{"reserved name", "name: builtin\n" + one, []string{`1:7: name: "builtin" is the name of the ladder Ony uses`}},
		{"name not a string", "name: [a]\n" + one, []string{"1:7: name: expected a string, got a list"}},
		{"unknown key with suggestion", "name: a\nrepaet: 1\n" + one, []string{`2:1: repaet: unknown key (did you mean "repeat"?); known keys: name, order, default, match, steps, repeat, end`}},
		{"duplicate key", "name: a\nname: b\n" + one, []string{"2:1: name: duplicate key (first on line 1)"}},
		{"merge key", "name: a\n<<: {order: 1}\n" + one, []string{"2:1: merge keys (<<) are not supported"}},
		{"order out of range", "name: a\norder: 1001\n" + one, []string{`2:8: order: "1001" is out of range; use 0 to 1000`}},
		{"order negative", "name: a\norder: -1\n" + one, []string{`2:8: order: "-1" is out of range; use 0 to 1000`}},
		{"order not a number", "name: a\norder: first\n" + one, []string{`2:8: order: expected a whole number from 0 to 1000, got "first"`}},
		{"default not a bool", "name: a\ndefault: yes\n" + one, []string{`2:10: default: expected true or false, got "yes"`}},
		{"end unknown", "name: a\nend: expired\n" + one, []string{`2:6: end: end "expired" must be expire (the handoff expires when the ladder runs out) or wait (it stays pending until its own timeout) (did you mean "expire"?)`}},
		{"repeat out of range", "name: a\nrepeat: 11\n" + one, []string{`2:9: repeat: "11" is out of range; use 0 to 10`}},
		{"repeat without waits", "name: a\nrepeat: 1\nsteps:\n  - {channels: [console], targets: [role:admin], wait: 500ms}\nend: wait\n",
			[]string{"2:9: repeat: the steps wait 500ms in all, so repeating them would notify everyone again at once"}},
		{"steps empty", "name: a\nsteps: []\n", []string{"2:8: steps: no steps; a ladder needs at least one"}},
		{"steps null", "name: a\nsteps:\n", []string{"2:7: steps: no steps; a ladder needs at least one"}},
		{"steps not a list", "name: a\nsteps: {channels: [console]}\n", []string{"2:8: steps: expected a list, got a mapping"}},
		{"too many steps", "name: a\nsteps:\n" + strings.Repeat(step, 21), []string{"3:3: steps: 21 steps; a ladder has at most 20"}},
		{"step null", "name: a\nsteps:\n  -\n", []string{"3:4: steps[0]: expected a step (a mapping with channels and targets), got null"}},
		{"step without channels and targets", "name: a\nsteps:\n  - wait: 1m\n", []string{
			"3:5: steps[0].channels: missing; a step needs at least one of console, webhook, slack, telegram, sms, call",
			"3:5: steps[0].targets: missing; a step needs at least one target: an email address, group:<name>"}},
		{"step unknown key", "name: a\nsteps:\n  - {channels: [console], targets: [role:admin], wait: 1m, quiet: ignore}\n",
			[]string{`3:60: steps[0].quiet: unknown key; known keys: name, channels, targets, wait, quiet_hours, override_quiet_hours_at, redial, providers`}},
		{"duplicate step names", "name: a\nsteps:\n  - {name: x, channels: [console], targets: [role:admin], wait: 1m}\n  - {name: x, channels: [console], targets: [role:admin], wait: 1m}\n",
			[]string{`4:12: steps[1].name: step name "x" is already used on line 3`}},
		{"bad step name", "name: a\nsteps:\n  - {name: Chat, channels: [console], targets: [role:admin], wait: 1m}\n",
			[]string{`3:12: steps[0].name: step name "Chat" must be`}},
		{"unknown channel", "name: a\nsteps:\n  - {channels: [console, emial], targets: [role:admin], wait: 1m}\n",
			[]string{`3:26: steps[0].channels[1]: unknown channel "emial"; channels are console, webhook, slack, telegram, sms, call`}},
		{"channel typo", "name: a\nsteps:\n  - {channels: [slak], targets: [role:admin], wait: 1m}\n",
			[]string{`3:17: steps[0].channels[0]: unknown channel "slak" (did you mean "slack"?)`}},
		{"duplicate channel", "name: a\nsteps:\n  - {channels: [sms, sms], targets: [role:admin], wait: 1m}\n",
			[]string{`3:22: steps[0].channels[1]: channel "sms" is listed twice (first on line 3)`}},
		{"no channels", "name: a\nsteps:\n  - {channels: [], targets: [role:admin], wait: 1m}\n",
			[]string{"3:16: steps[0].channels: no channels; a step needs at least one of"}},
		{"no targets", "name: a\nsteps:\n  - {channels: [console], targets: [], wait: 1m}\n",
			[]string{"3:36: steps[0].targets: no targets; a step needs at least one: an email address"}},
		{"user with a display name", "name: a\nsteps:\n  - channels: [console]\n    targets: [\"Ana <ana@example.com>\"]\n    wait: 1m\n",
			[]string{`4:15: steps[0].targets[0]: "Ana <ana@example.com>" is not a plain email address such as ana@example.com (no name, no <>)`}},
		{"not an address", "name: a\nsteps:\n  - channels: [console]\n    targets: [ana@]\n    wait: 1m\n",
			[]string{`4:15: steps[0].targets[0]: "ana@" is not a plain email address`}},
		{"unknown target", "name: a\nsteps:\n  - channels: [console]\n    targets: [oncall]\n    wait: 1m\n",
			[]string{`4:15: steps[0].targets[0]: unknown target "oncall"; use an email address, group:<name>, role:admin, role:member, slack:<#channel or channel id>, telegram:<chat id or @channel> or webhook:<name>`}},
		{"unknown target kind", "name: a\nsteps:\n  - channels: [console]\n    targets: [\"grop:dba\"]\n    wait: 1m\n",
			[]string{`4:15: steps[0].targets[0]: unknown target kind "grop" (did you mean "group"?); use an email address`}},
		{"bad group", "name: a\nsteps:\n  - channels: [console]\n    targets: [\"group:\"]\n    wait: 1m\n",
			[]string{`4:15: steps[0].targets[0]: group name "" must be`}},
		{"role viewer", "name: a\nsteps:\n  - channels: [console]\n    targets: [role:viewer]\n    wait: 1m\n",
			[]string{"4:15: steps[0].targets[0]: viewers cannot decide handoffs"}},
		{"unknown role", "name: a\nsteps:\n  - channels: [console]\n    targets: [role:admins]\n    wait: 1m\n",
			[]string{`4:15: steps[0].targets[0]: unknown role "admins"; use role:admin or role:member (did you mean "admin"?)`}},
		{"bad slack channel", "name: a\nsteps:\n  - channels: [slack]\n    targets: [\"slack:ops room\"]\n    wait: 1m\n",
			[]string{`4:15: steps[0].targets[0]: slack target "slack:ops room" must name a channel`}},
		{"bad telegram chat", "name: a\nsteps:\n  - channels: [telegram]\n    targets: [\"telegram:12a\"]\n    wait: 1m\n",
			[]string{`4:15: steps[0].targets[0]: telegram target "telegram:12a" must name a chat`}},
		{"bad webhook name", "name: a\nsteps:\n  - channels: [webhook]\n    targets: [\"webhook:Teams\"]\n    wait: 1m\n",
			[]string{`4:15: steps[0].targets[0]: webhook name "Teams" must be`}},
		{"duplicate target after lower-casing", "name: a\nsteps:\n  - channels: [console]\n    targets: [ana@example.com, ANA@example.com]\n    wait: 1m\n",
			[]string{`4:32: steps[0].targets[1]: target "ana@example.com" is listed twice (first on line 4)`}},
		{"team target without its channel", "name: a\nsteps:\n  - channels: [console]\n    targets: [role:admin, \"slack:#ops\", \"telegram:-1\", webhook:teams]\n    wait: 1m\n", []string{
			"4:27: steps[0].targets[1]: slack:#ops posts to slack, but the step's channels have no slack; add it to channels",
			"4:41: steps[0].targets[2]: telegram:-1 posts to telegram, but the step's channels have no telegram",
			"4:56: steps[0].targets[3]: webhook:teams posts to webhook, but the step's channels have no webhook"}},
		{"webhook channel without webhook target", "name: a\nsteps:\n  - channels: [console, webhook]\n    targets: [role:admin]\n    wait: 1m\n",
			[]string{"3:25: steps[0].channels[1]: the webhook channel posts to webhook:<name> targets, and the step has none"}},
		{"webhook only, to people", "name: a\nsteps:\n  - channels: [webhook]\n    targets: [webhook:teams, group:ops]\n    wait: 1m\n",
			[]string{"4:30: steps[0].targets[1]: webhook reaches bridges, not people: group:ops would not be notified"}},
		{"sms with team targets only", "name: a\nsteps:\n  - channels: [slack, sms]\n    targets: [\"slack:#ops\"]\n    wait: 1m\n",
			[]string{"3:23: steps[0].channels[1]: sms reaches people, and the step targets none; add an email address, group: or role: target"}},
		{"wait without unit", "name: a\nsteps:\n  - {channels: [console], targets: [role:admin], wait: 300}\n",
			[]string{`3:56: steps[0].wait: bad duration "300"; use a number with a unit, such as 90s, 5m or 1h30m`}},
		{"wait too long", "name: a\nsteps:\n  - {channels: [console], targets: [role:admin], wait: 25h}\n",
			[]string{"3:56: steps[0].wait: 25h is out of range; use 0s to 24h"}},
		{"wait negative", "name: a\nsteps:\n  - {channels: [console], targets: [role:admin], wait: -1m}\n",
			[]string{"3:56: steps[0].wait: -1m is out of range; use 0s to 24h"}},
		{"wait a list", "name: a\nsteps:\n  - {channels: [console], targets: [role:admin], wait: [1m]}\n",
			[]string{"3:56: steps[0].wait: expected a duration such as 90s, 5m or 1h30m, got a list"}},
		{"last step expires at once", "name: a\nsteps:\n  - {channels: [console], targets: [role:admin], wait: 0s}\n",
			[]string{"3:56: steps[0].wait: the last step waits 0s and end defaults to expire, so the handoff would expire the moment this step is sent"}},
		{"last step without wait", "name: a\nend: expire\nsteps:\n  - {channels: [console], targets: [role:admin]}\n",
			[]string{"4:5: steps[0]: the last step waits 0s and end is expire"}},
		{"quiet hours unknown", "name: a\nsteps:\n  - {channels: [sms], targets: [role:admin], wait: 1m, quiet_hours: ignored}\n",
			[]string{`3:69: steps[0].quiet_hours: quiet_hours "ignored" must be respect (skip people in their quiet hours) or ignore (reach them anyway) (did you mean "ignore"?)`}},
		{"override unknown level", "name: a\nsteps:\n  - {channels: [sms], targets: [role:admin], wait: 1m, override_quiet_hours_at: hi}\n",
			[]string{`3:81: steps[0].override_quiet_hours_at: unknown risk level "hi"; use medium, high or critical (did you mean "high"?)`}},
		{"override at low", "name: a\nsteps:\n  - {channels: [sms], targets: [role:admin], wait: 1m, override_quiet_hours_at: low}\n",
			[]string{"3:81: steps[0].override_quiet_hours_at: every handoff is at least low"}},
		{"override with ignore", "name: a\nsteps:\n  - {channels: [sms], targets: [role:admin], wait: 1m, quiet_hours: ignore, override_quiet_hours_at: high}\n",
			[]string{"3:102: steps[0].override_quiet_hours_at: quiet_hours is ignore, so quiet hours are overridden for every risk already"}},
		{"redial without call", "name: a\nsteps:\n  - {channels: [sms], targets: [role:admin], wait: 5m, redial: {times: 1, gap: 1m}}\n",
			[]string{"3:56: steps[0].redial: redial retries calls, and the step has no call channel"}},
		{"redial out of range", "name: a\nsteps:\n  - {channels: [call], targets: [role:admin], wait: 5m, redial: {times: 6, gap: 31m}}\n", []string{
			`3:73: steps[0].redial.times: "6" is out of range; use 1 to 5`,
			"3:81: steps[0].redial.gap: 31m is out of range; use 10s to 30m"}},
		{"redial incomplete", "name: a\nsteps:\n  - {channels: [call], targets: [role:admin], wait: 5m, redial: {times: 2}}\n",
			[]string{"3:65: steps[0].redial.gap: missing; redial needs times (1 to 5) and gap (10s to 30m)"}},
		{"redial past the end", "name: a\nsteps:\n  - {channels: [call], targets: [role:admin], wait: 2m, redial: {times: 2, gap: 1m}}\n",
			[]string{"3:57: steps[0].redial: the last redial comes 2m after the call but the ladder ends (end defaults to expire) 2m after it"}},
		{"providers", "name: a\nsteps:\n  - channels: [sms, console]\n    targets: [role:admin]\n    wait: 1m\n    providers: {sms: [twilio, Twilio, twilio], call: [a], console: [b], fax: [c]}\n", []string{
			`6:31: steps[0].providers["sms"][1]: provider name "Twilio" must be 1 to 32 lower-case letters, digits, '_' or '-'`,
			`6:39: steps[0].providers["sms"][2]: provider "twilio" is listed twice`,
			`6:48: steps[0].providers["call"]: providers for call, but the step's channels have no call`,
			`6:59: steps[0].providers["console"]: console has no providers to choose between; providers applies to slack, telegram, sms, call`,
			`6:73: steps[0].providers["fax"]: unknown channel "fax"; providers applies to slack, telegram, sms, call`}},
		{"providers empty", "name: a\nsteps:\n  - channels: [sms]\n    targets: [role:admin]\n    wait: 1m\n    providers: {sms: []}\n",
			[]string{`6:22: steps[0].providers["sms"]: no providers; list them in the order to try`}},
		{"match unknown key", "name: a\nmatch: {action: [deploy.*]}\n" + one, []string{`2:9: match.action: unknown key (did you mean "actions"?); known keys: risk, actions, labels`}},
		{"match risk", "name: a\nmatch: {risk: [hihg, high, High]}\n" + one, []string{
			`2:16: match.risk[0]: unknown risk level "hihg"; use low, medium, high or critical (did you mean "high"?)`,
			`2:28: match.risk[2]: risk level "high" is listed twice`}},
		{"match risk empty", "name: a\nmatch: {risk: []}\n" + one, []string{"2:15: match.risk: empty list; leave match.risk out to match every risk level"}},
		{"match actions", "name: a\nmatch: {actions: [\"Deploy.*\", \"db.[\", \"\", \"a b\", db.*, db.*]}\n" + one, []string{
			`2:19: match.actions[0]: actions are lower-case, so "Deploy.*" could never match; write "deploy.*"`,
			`2:31: match.actions[1]: bad glob "db.[": syntax error in pattern`,
			`2:39: match.actions[2]: empty action glob; use "*" for every action`,
			`2:43: match.actions[3]: action glob "a b" contains a space, so it could never match`,
			`2:56: match.actions[5]: action glob "db.*" is listed twice`}},
		{"match labels", "name: a\nmatch:\n  labels: {Env: prod, team: \"\", x: \"[a\", y: [1]}\n" + one, []string{
			`3:12: match.labels["Env"]: label key "Env" can never match`,
			`3:29: match.labels["team"]: empty value; use "*" to match any value of the label`,
			`3:36: match.labels["x"]: bad glob "[a": syntax error in pattern`,
			`3:45: match.labels["y"]: expected a string, got a list`}},
		{"match labels empty", "name: a\nmatch: {labels: {}}\n" + one, []string{"2:17: match.labels: empty mapping; leave match.labels out to match any labels"}},
		{"default with a match", "name: a\ndefault: true\nmatch: {risk: low}\n" + one, []string{"3:1: match: a default ladder is used whenever no other ladder matches, so its match would be ignored"}},
		{"duplicate names in a file", "name: a\n" + one + "---\nname: a\n" + one, []string{`5:7: name: ladder "a" is already defined at f.yaml:1`}},
		{"two defaults in a file", "name: a\ndefault: true\n" + one + "---\nname: b\ndefault: true\n" + one,
			[]string{`7:10: default: only one ladder may be default, and "a" at f.yaml:2 already is`}},
		{"errors in the second document", "name: a\n" + one + "---\nname: b\nsteps: 3\n", []string{"6:8: steps: expected a list, got an integer"}},
		{"syntax error after a good document", "name: a\n" + one + "---\nname: [\n", []string{"5: invalid YAML: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantErrs(t, parseErrs(t, tt.src), tt.want)
		})
	}
}

// TestParseManyMistakes checks that one pass reports every mistake of a badly broken file.
func TestParseManyMistakes(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "ladders", "invalid", "many.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := parseErrs(t, string(data))
	wantErrs(t, got, []string{
		`1:7: name: ladder name "Bad Name" must be`,
		`2:1: ordr: unknown key (did you mean "order"?)`,
		`3:8: order: "5000" is out of range`,
		`4:10: default: expected true or false, got "yes"`,
		`6:10: match.risk[0]: unknown risk level "hihg"`,
		`6:21: match.risk[2]: risk level "low" is listed twice`,
		`7:13: match.actions[0]: actions are lower-case`,
		`7:25: match.actions[1]: bad glob "db.["`,
		`7:33: match.actions[2]: empty action glob`,
		`8:12: match.labels["Env"]: label key "Env" can never match`,
		`8:29: match.labels["team"]: empty value`,
		`8:36: match.labels["x"]: bad glob "[a"`,
		`11:16: steps[0].channels[0]: unknown channel "slak" (did you mean "slack"?)`,
		`11:31: steps[0].channels[2]: channel "console" is listed twice`,
		`12:32: steps[0].targets[1]: "Ana <ana@example.com>" is not a plain email address`,
		`12:57: steps[0].targets[2]: group name "On Call" must be`,
		`12:72: steps[0].targets[3]: viewers cannot decide handoffs`,
		`12:99: steps[0].targets[5]: telegram target "telegram:abc" must name a chat`,
		`12:128: steps[0].targets[7]: unknown target "foo"`,
		`13:11: steps[0].wait: bad duration "300"`,
		`14:18: steps[0].quiet_hours: quiet_hours "never" must be respect`,
		`16:15: steps[1].targets[0]: webhook reaches bridges, not people`,
		`17:5: steps[1].redial: redial retries calls, and the step has no call channel`,
		`17:13: steps[1].redial.gap: missing`,
		`17:21: steps[1].redial.times: "9" is out of range`,
		`18:17: steps[1].providers["sms"]: providers for sms, but the step's channels have no sms`,
		`18:40: steps[1].providers["console"]: console has no providers`,
		`19:16: steps[2].channels[0]: sms reaches people, and the step targets none`,
		`19:21: steps[2].channels[1]: call reaches people, and the step targets none`,
		`20:15: steps[2].targets[0]: slack:#ops posts to slack, but the step's channels have no slack`,
		`21:30: steps[2].override_quiet_hours_at: every handoff is at least low`,
		`23:32: steps[3].targets[1]: target "ben@example.com" is listed twice`,
		`24:29: steps[3].redial.gap: 5s is out of range`,
		`25:9: repeat: "11" is out of range`,
		`26:6: end: end "never" must be expire`,
		`29:8: steps: no steps`,
		`33:5: steps[0]: the last step waits 0s and end defaults to expire`,
		`34:9: repeat: the steps wait 0s in all`,
	})
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	t.Run("too large", func(t *testing.T) {
		t.Parallel()
		src := "name: a\n" + one + "# " + strings.Repeat("x", maxFileBytes) + "\n"
		wantErrs(t, parseErrs(t, src), []string{"the file is larger than 256 KiB"})
	})
	t.Run("alias bomb", func(t *testing.T) {
		t.Parallel()
		data, err := os.ReadFile(filepath.Join("testdata", "ladders", "invalid", "alias-bomb.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got := parseErrs(t, string(data))
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s", d)
		}
		if len(got) == 0 || len(got) > maxErrors+1 {
			t.Errorf("%d errors", len(got))
		}
	})
	t.Run("many values", func(t *testing.T) {
		t.Parallel()
		// Every target is visited; past the budget the parse stops with one error saying why.
		src := "name: a\nsteps:\n  - channels: [console]\n    targets: &t [" + strings.Repeat("role:admin, ", 99) + "role:admin]\n" +
			strings.Repeat("  - {channels: [console], targets: *t, wait: 1m}\n", 19)
		// 100 duplicate targets × 20 steps stays under the node budget but over the error cap.
		got := parseErrs(t, src)
		if len(got) != maxErrors+1 || !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "too many mistakes (200); stopping here") }) {
			t.Errorf("%d errors:\n%s", len(got), strings.Join(got, "\n"))
		}
	})
	t.Run("too many targets", func(t *testing.T) {
		t.Parallel()
		var ts []string
		for i := range 101 {
			ts = append(ts, fmt.Sprintf("group:g%d", i))
		}
		src := "name: a\nsteps:\n  - channels: [console]\n    wait: 1m\n    targets: [" + strings.Join(ts, ", ") + "]\n"
		wantErrs(t, parseErrs(t, src), []string{"5:14: steps[0].targets: 101 targets; a step has at most 100"})
	})
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Column: 5, Path: "steps[0]", Msg: "bad"}, "a.yaml:3:5: steps[0]: bad"},
		{Error{File: "a.yaml", Line: 3, Msg: "invalid YAML: x"}, "a.yaml:3: invalid YAML: x"},
		{Error{File: "a.yaml", Msg: "too large"}, "a.yaml: too large"},
		{Error{Line: 1, Column: 2, Msg: "m"}, "1:2: m"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.e, got, tt.want)
		}
	}
	es := &Errors{List: []Error{{File: "a", Line: 1, Column: 1, Msg: "x"}, {File: "a", Line: 2, Column: 1, Msg: "y"}}}
	if got := es.Error(); got != "a:1:1: x\na:2:1: y" {
		t.Errorf("Errors.Error() = %q", got)
	}
	b, err := json.Marshal(es.List[0])
	if err != nil || string(b) != `{"file":"a","line":1,"column":1,"message":"x"}` {
		t.Errorf("JSON %s %v", b, err)
	}
}

func writeLadder(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDir(t *testing.T) {
	t.Parallel()
	t.Run("files by name, others skipped", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeLadder(t, dir, "b.yml", "name: b\n"+one)
		writeLadder(t, dir, "a.yaml", "name: a\n"+one+"---\nname: c\n"+one)
		writeLadder(t, dir, ".#a.yaml", "broken: [")
		writeLadder(t, dir, "notes.txt", "not a ladder")
		if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
			t.Fatal(err)
		}
		ls, err := LoadDir(dir, testKinds)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range ls {
			got = append(got, l.Name+" "+l.Origin)
		}
		want := []string{"a file:" + filepath.Join(dir, "a.yaml"), "c file:" + filepath.Join(dir, "a.yaml"), "b file:" + filepath.Join(dir, "b.yml")}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("errors of every file, and names across files", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		a := writeLadder(t, dir, "a.yaml", "name: dup\ndefault: true\n"+one+"---\nname: x\nrepeat: many\n"+one)
		b := writeLadder(t, dir, "b.yaml", "# second\nname: dup\ndefault: true\n"+one)
		c := writeLadder(t, dir, "c.yaml", "name: other\ndefault: true\nsteps: 1\n")
		_, err := LoadDir(dir, testKinds)
		var pe *Errors
		if !errors.As(err, &pe) {
			t.Fatalf("err = %v", err)
		}
		var got []string
		for _, e := range pe.List {
			got = append(got, e.Error())
		}
		want := []string{
			a + `:7:9: repeat: expected a whole number from 0 to 10, got "many"`,
			b + `:2:7: name: ladder "dup" is already defined at ` + a + `:1`,
			b + `:3:10: default: only one ladder may be default, and "dup" at ` + a + `:2 already is`,
			c + `:2:10: default: only one ladder may be default, and "dup" at ` + a + `:2 already is`,
			c + `:3:8: steps: expected a list, got an integer`,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		t.Parallel()
		ls, err := LoadDir(t.TempDir(), testKinds)
		if err != nil || len(ls) != 0 {
			t.Errorf("LoadDir = %v, %v", ls, err)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		t.Parallel()
		if _, err := LoadDir(filepath.Join(t.TempDir(), "nope"), testKinds); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want not exist", err)
		}
	})
	t.Run("unreadable file", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "gone.yaml")
		_, err := LoadFiles([]string{missing}, testKinds)
		if err == nil || err.Error() != missing+": cannot read: no such file or directory" {
			t.Errorf("err = %v", err)
		}
	})
}

func TestBuiltin(t *testing.T) {
	t.Parallel()
	b := Builtin()
	want := &Ladder{Name: "builtin", Origin: "builtin", Order: 100, Default: true, End: EndWait,
		Steps: []Step{{Channels: []string{"console"}, Targets: []Target{{TargetRole, "admin"}, {TargetRole, "member"}}, Quiet: QuietRespect}}}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("Builtin() = %+v", b)
	}
	b.Steps[0].Channels[0] = "changed"
	if Builtin().Steps[0].Channels[0] != "console" {
		t.Error("Builtin shares state between calls")
	}
}

func TestWebhookNames(t *testing.T) {
	t.Parallel()
	ls := mustParse(t, `name: a
steps:
  - {channels: [webhook, console], targets: [webhook:zulip, webhook:teams, role:admin], wait: 1m}
  - {channels: [webhook], targets: [webhook:teams], wait: 1m}
`)
	if got := ls[0].TeamTargets("webhook"); !reflect.DeepEqual(got, []string{"teams", "zulip"}) {
		t.Errorf("WebhookNames = %v", got)
	}
	if got := Builtin().TeamTargets("webhook"); len(got) != 0 {
		t.Errorf("Builtin().WebhookNames = %v", got)
	}
}

// TestExampleLadders checks that the ladders shipped in configs/ladders, which the docs quote,
// are valid one by one and as a directory.
func TestExampleLadders(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "configs", "ladders")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("example ladders: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(data, f, testKinds); err != nil {
			t.Errorf("%v", err)
		}
	}
	ls, err := LoadDir(dir, testKinds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSet(ls); err != nil {
		t.Fatal(err)
	}
}
