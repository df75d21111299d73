package risk

import "slices"

// Rule is one entry of the rule table. Rules are data so that an
// organisation can tune the table without changing code.
//
// A rule fires when the action matches one of Actions, the payload kind is
// in Kinds, Label matches (if set) and Pattern matches (if set).
type Rule struct {
	ID     string
	Reason Reason
	Level  Level

	// Actions are globs over the lower-cased action; '*' matches any run of
	// characters. At least one is required: use "*" for every action.
	Actions []string

	// Kinds lists the payload kinds the rule reads; "" stands for a handoff
	// that did not name its kind. Empty means every kind.
	Kinds []string

	// Keywords are a prefilter: Pattern only runs near text holding at least
	// one keyword, compared ASCII case-insensitively. So every match of
	// Pattern must contain a keyword on the line where the match begins, and
	// Pattern may not use \A or a non-multiline ^, which would then see the
	// start of the scanned window rather than of the payload.
	Keywords []string

	// Pattern is an RE2 expression over the payload. Empty means the rule
	// does not look at the payload.
	Pattern string

	// Require and Unless refine each Pattern match: it counts only if every
	// Require and no Unless expression matches inside it, where ^ and $ mean
	// the ends of the match. They state what RE2 cannot say directly, such
	// as "both -r and -f, in any order" or "without a WHERE". They judge the
	// matches RE2 reports leftmost first without overlap, so a rejected
	// match can hide one inside it; a Pattern that spans one command or
	// statement keeps that harmless.
	Require []string
	Unless  []string

	// Fold runs Pattern, Require and Unless on the payload with A-Z lowered,
	// so they are written in lower case. Unlike (?i), that keeps a literal
	// start, which RE2 uses to skip ahead; it matters on long payloads.
	Fold bool

	// WordStart rejects Pattern matches that begin inside a word, as a
	// leading \b would, but without costing the pattern its literal start.
	// Rejected matches are judged as under Require.
	WordStart bool

	// Within, if set, confines every match to one piece of the payload
	// between separators, e.g. "\n" for shell, where a newline ends a
	// command, or ";" for SQL statements.
	Within string

	Label LabelSelector
}

// LabelSelector matches when any of Keys is present with one of Values.
// Keys and values compare case-insensitively and values are trimmed, because
// agents write "Prod", "PROD " and "prod" for the same thing. With no Values,
// the presence of a key is enough.
type LabelSelector struct {
	Keys   []string
	Values []string
}

func (s LabelSelector) isZero() bool { return len(s.Keys) == 0 && len(s.Values) == 0 }

// ActionBase gives every action matching Action (a glob, as in Rule.Actions)
// a floor level. The first matching entry wins, so specific entries go first.
// Reason is optional and is reported when the entry applies.
type ActionBase struct {
	Action string
	Level  Level
	Reason Reason
}

// DefaultBase returns a copy of the built-in action table. Actions that
// match no entry are Low.
func DefaultBase() []ActionBase {
	return []ActionBase{
		{Action: "payment", Level: Medium, Reason: ReasonPayment},
		{Action: "payment.*", Level: Medium, Reason: ReasonPayment},
		{Action: "deploy", Level: Medium, Reason: ReasonDeploy},
		{Action: "deploy.*", Level: Medium, Reason: ReasonDeploy},
		{Action: "db.migrate", Level: Medium, Reason: ReasonSchemaMigration},
		{Action: "infra.*", Level: Medium, Reason: ReasonInfraChange},
		{Action: "file.delete", Level: Medium, Reason: ReasonFileDelete},
		{Action: "shell.exec", Level: Low},
		{Action: "git.push", Level: Low},
	}
}

// Building blocks for the shell patterns. Shell rules run per line, so these
// only need to keep a match inside one simple command.
const (
	// cmdStart: a command word begins at line start (optionally after a
	// diff's "+"), after a separator, inside quotes or $(…), or after a
	// directory as in /bin/rm.
	cmdStart = `(?:^\+?|[\s;&|(` + "`" + `"'/{])`
	// argSep: the gap between two interesting arguments of one command.
	argSep = `[ \t](?:[^\n;&|]*[ \t])?`
	// argEnd: an argument ends at a blank, a separator, a quote or line end.
	argEnd = `(?:[\s;&|)"'` + "`" + `]|$)`
	// anyArgs: optional further arguments of the same command.
	anyArgs = `(?:[ \t][^\n;&|]*)?`

	// rmCmd is one whole rm command; the rm rules then ask which options and
	// targets it holds, in any order, with Require.
	rmCmd       = `(?m)` + cmdStart + `rm[ \t][^\n;&|]*`
	rmRecursive = `[ \t](?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)` + argEnd
	rmForce     = `[ \t](?:-[a-zA-Z]*f[a-zA-Z]*|--force)` + argEnd
	rmTarget    = `[ \t]["']?(?:/\*?|~/?\*?|\$\{?HOME\}?/?\*?)["']?` + argEnd

	blockDevice = `/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|disk|mapper/|md[0-9]|dm-|loop|rdisk|mtd)`
	systemPath  = `(?:/(?:etc|usr|boot|bin|sbin|lib|lib32|lib64)(?:/|["']?` + argEnd + `)|` + blockDevice + `)`
	// redirect: '>' or '>>' that is not part of an arrow like -> or =>.
	redirect = `(?:^|[^-=>])>>?\|?[ \t]*["']?`

	gitPush     = cmdStart + `git(?:[ \t]+-{1,2}[a-zA-Z][\w-]*(?:=[^ \t\n;&|]*|[ \t]+[^- \t\n;&|][^ \t\n;&|]*)?)*[ \t]+push`
	branchGuard = `(?:main|master|releases?(?:[/_.-][^\s;&|:]*)?|prod(?:uction)?(?:[/_.-][^\s;&|:]*)?)`

	// SQL patterns are written in lower case for Fold rules.
	// sqlIdent: a possibly qualified, possibly quoted SQL name.
	sqlName  = `(?:"[^"\n;]+"|` + "`[^`\\n;]+`" + `|\[[^\]\n;]+\]|[a-z_][\w$]*)`
	sqlIdent = sqlName + `(?:\.` + sqlName + `)*`
	// sqlRest: the rest of a statement, stepping over short literals. A bare
	// quote ends it, because SQL inside a shell command is itself quoted.
	sqlRest = `(?:[^"'` + "`" + `]|'[^'\n&|]*'|"[^"\n&|]*")*`
	sqlGap  = `[\s+]+` // '+' lets a diff's added lines continue a statement
	sqlEnd  = `\s*(?:$|["')` + "`" + `])`

	// sqlDelete and sqlUpdate match one statement up to its end, so that
	// Require and Unless can inspect its WHERE clause. A bare name must be
	// followed by the end of the statement or a clause keyword, which keeps
	// "delete from the list" in prose quiet.
	sqlDelete = `(?m)delete` + sqlGap + `from` + sqlGap + `(?:only` + sqlGap + `)?` + sqlIdent +
		`(?:` + sqlGap + `(?:(?:as` + sqlGap + `)?[a-z_]\w*` + sqlGap + `)?(?:using|returning|where|order|limit|output)\b` + sqlRest +
		`|` + sqlEnd + `)`
	sqlUpdate = `update` + sqlGap + `(?:only` + sqlGap + `)?` + sqlIdent + `(?:` + sqlGap + `(?:as` + sqlGap + `)?[a-z_]\w*)?` +
		sqlGap + `set` + sqlGap + `(?:` + sqlIdent + `|\([^)]*\))\s*=` + sqlRest
	sqlWhere = `\bwhere\b`
	// sqlWhereTrue: a WHERE that holds for every row is no bound at all.
	sqlWhereTrue = `\bwhere[\s+]+(?:1\s*=\s*1|true|'1'\s*=\s*'1')(?:` + sqlEnd + `|\s*\b(?:returning|order|limit)\b)`
)

// DefaultRules returns a copy of the built-in rule table.
func DefaultRules() []Rule {
	// Payload rules run for every action and every payload kind, because the
	// agent names both: a command runs the same under any action name, and a
	// "log" label must not be a way to switch the rules off.
	all := []string{"*"}
	script := []string{KindCommand, KindDiff, KindText, KindLog, ""}

	rules := []Rule{
		// Shell.
		{
			ID: "shell.rm_recursive", Reason: ReasonRecursiveDelete, Level: Medium,
			Actions: all, Kinds: script, Keywords: []string{"rm ", "rm\t"}, Within: "\n",
			Pattern: rmCmd, Require: []string{rmRecursive},
		},
		{
			ID: "shell.rm_recursive_force", Reason: ReasonRecursiveDelete, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"rm ", "rm\t"}, Within: "\n",
			Pattern: rmCmd, Require: []string{rmRecursive, rmForce},
		},
		{
			ID: "shell.rm_root", Reason: ReasonRecursiveDelete, Level: Critical,
			Actions: all, Kinds: script, Keywords: []string{"rm ", "rm\t"}, Within: "\n",
			Pattern: rmCmd, Require: []string{rmRecursive, rmForce, rmTarget},
		},
		{
			ID: "shell.sudo", Reason: ReasonPrivilegeEscalation, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"sudo", "doas", "pkexec"}, Within: "\n",
			Pattern: `(?m)` + cmdStart + `(?:sudo|doas|pkexec)(?:\s|$)`,
		},
		{
			ID: "shell.su", Reason: ReasonPrivilegeEscalation, Level: High,
			// Bare "su" opens an interactive shell an agent cannot drive, so
			// only su with arguments counts; that lets "su " be the keyword
			// instead of the far commoner "su".
			Actions: all, Kinds: script, Keywords: []string{"su ", "su\t"}, Within: "\n",
			Pattern: `(?m)` + cmdStart + `su[ \t]+(?:-|root` + argEnd + `|[a-z_][\w.-]*[ \t]+-c\b)`,
		},
		{
			ID: "shell.pipe_to_shell", Reason: ReasonPipeToShell, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"curl", "wget"}, Within: "\n",
			Pattern: `(?m)` + cmdStart + `(?:curl|wget)\b[^\n;]*`,
			Require: []string{`\|[ \t]*(?:(?:sudo|env|exec)(?:[ \t]+-[^ \t\n]*|[ \t]+\w+=[^ \t\n]*)*[ \t]+)?` +
				`(?:[^ \t\n|]*/)?(?:(?:ba|z|da|k|fi)?sh|python[0-9.]*|perl|ruby|node)` + argEnd},
		},
		{
			ID: "shell.run_download", Reason: ReasonPipeToShell, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"curl", "wget"}, Within: "\n",
			Pattern: `(?m)` + cmdStart + `(?:(?:ba|z|da|k)?sh|source|\.|eval)[ \t][^\n]*(?:<\(|\$\(|` + "`" + `)[ \t]*(?:curl|wget)\b`,
		},
		{
			ID: "shell.chmod_world_writable", Reason: ReasonWorldWritable, Level: Medium,
			Actions: all, Kinds: script, Keywords: []string{"chmod"}, Within: "\n",
			Pattern: `(?m)` + cmdStart + `chmod[ \t][^\n;&|]*`,
			Require: []string{`[ \t,](?:0?[0-7]?[0-7]{2}[2367]|[ugoa]*[ao][ugoa]*[+=][rwxXst]*w[rwxXst]*)(?:,|` + argEnd + `)`},
		},
		{
			ID: "shell.system_path_write", Reason: ReasonSystemPathWrite, Level: High,
			Actions: all, Kinds: script, Within: "\n",
			Keywords: []string{"/etc", "/usr", "/boot", "/bin", "/sbin", "/lib", "/dev/"},
			Pattern:  `(?m)(?:` + redirect + `|` + cmdStart + `tee` + anyArgs + `[ \t]["']?)` + systemPath,
		},
		{
			ID: "shell.device_write", Reason: ReasonDiskOverwrite, Level: Critical,
			Actions: all, Kinds: script, Keywords: []string{"/dev/"}, Within: "\n",
			Pattern: `(?m)(?:` + redirect + `|` + cmdStart + `(?:dd` + argSep + `of=|shred` + argSep + `)["']?)` + blockDevice,
		},
		{
			ID: "shell.mkfs", Reason: ReasonDiskOverwrite, Level: Critical,
			Actions: all, Kinds: script, Keywords: []string{"mkfs", "mke2fs", "mkswap", "wipefs"}, Within: "\n",
			Pattern: `(?m)` + cmdStart + `(?:mkfs(?:\.[a-z0-9]+)?|mke2fs|mkswap|wipefs)[ \t]`,
		},

		// Git.
		{
			ID: "git.force_push", Reason: ReasonForcePush, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"push"}, Within: "\n",
			Pattern: `(?m)` + gitPush + argSep +
				`(?:--force(?:-with-lease)?(?:=[^\s;&|]*)?|-[a-zA-Z]*f[a-zA-Z]*|\+[^\s;&|]+)` + argEnd,
		},
		{
			ID: "git.protected_branch_push", Reason: ReasonProtectedBranchPush, Level: Medium,
			Actions: all, Kinds: script, Keywords: []string{"push"}, Within: "\n",
			Pattern: `(?m)` + gitPush + anyArgs + `(?:[ \t]\+?|:|refs/heads/)` + branchGuard + argEnd,
		},

		// SQL keywords are case-insensitive, hence Fold.
		{
			ID: "sql.drop", Reason: ReasonSQLDrop, Level: Critical,
			Actions: all, Kinds: script, Keywords: []string{"drop"}, Within: ";", Fold: true, WordStart: true,
			Pattern: `drop\s+(?:table|database|schema)\b`,
		},
		{
			ID: "sql.truncate", Reason: ReasonSQLTruncate, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"truncate"}, Within: ";", Fold: true, WordStart: true,
			// A bare name must be followed by the end of the statement or a
			// TRUNCATE option, so "truncate the output" in prose stays quiet.
			Pattern: `(?m)truncate\s+(?:table\b|(?:only\s+)?` + sqlIdent + `(?:\s*,\s*` + sqlIdent + `)*` +
				`(?:` + sqlEnd + `|\s*\b(?:cascade|restrict|restart|continue)\b))`,
		},
		{
			ID: "sql.delete_unbounded", Reason: ReasonSQLUnboundedDelete, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"delete"}, Within: ";", Fold: true, WordStart: true,
			Pattern: sqlDelete, Unless: []string{sqlWhere},
		},
		{
			ID: "sql.delete_where_true", Reason: ReasonSQLUnboundedDelete, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"delete"}, Within: ";", Fold: true, WordStart: true,
			Pattern: sqlDelete, Require: []string{sqlWhereTrue},
		},
		{
			ID: "sql.update_unbounded", Reason: ReasonSQLUnboundedUpdate, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"update"}, Within: ";", Fold: true, WordStart: true,
			Pattern: sqlUpdate, Unless: []string{sqlWhere},
		},
		{
			ID: "sql.update_where_true", Reason: ReasonSQLUnboundedUpdate, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"update"}, Within: ";", Fold: true, WordStart: true,
			Pattern: sqlUpdate, Require: []string{sqlWhereTrue},
		},
		{
			ID: "sql.alter_table", Reason: ReasonSQLAlter, Level: Medium,
			Actions: all, Kinds: script, Keywords: []string{"alter"}, Within: ";", Fold: true, WordStart: true,
			Pattern: `alter\s+table\b`,
		},

		// Infrastructure.
		{
			ID: "infra.destroy", Reason: ReasonInfraDestroy, Level: Critical,
			Actions: all, Kinds: script, Keywords: []string{"destroy"}, Within: "\n",
			Pattern: `(?m)` + cmdStart + `(?:` +
				`(?:terraform|tofu|terragrunt|pulumi|cdk)(?:[ \t]+-[^\s;&|]+)*[ \t]+(?:run-all[ \t]+)?destroy` +
				`|(?:terraform|tofu|terragrunt)(?:[ \t]+-[^\s;&|]+)*[ \t]+(?:run-all[ \t]+)?apply` + argSep + `-{1,2}destroy(?:=true)?` +
				`)` + argEnd,
		},
		{
			ID: "k8s.delete", Reason: ReasonK8sDelete, Level: High,
			// Keyed on the tool, not on "delete", which code and SQL use a lot.
			Actions: all, Kinds: script, Keywords: []string{"kubectl", "oc ", "oc\t"}, Within: "\n",
			Pattern: `(?m)` + cmdStart + `(?:kubectl|oc)` + argSep + `delete` + argEnd,
		},
		{
			ID: "k8s.helm_uninstall", Reason: ReasonK8sDelete, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"helm"}, Within: "\n",
			Pattern: `(?m)` + cmdStart + `helm` + argSep + `(?:uninstall|delete|del|un)` + argEnd,
		},
		{
			ID: "k8s.scale_to_zero", Reason: ReasonScaleToZero, Level: High,
			Actions: all, Kinds: script, Keywords: []string{"replicas"}, Within: "\n",
			Pattern: `(?m)` + cmdStart + `(?:kubectl|oc)` + argSep + `scale` + argSep + `--replicas(?:=|[ \t]+)["']?0["']?` + argEnd +
				// A manifest line; a diff's removed lines ("-") do not count.
				`|^[+ \t]*replicas:[ \t]*["']?0["']?[ \t]*(?:#.*)?$` +
				`|"replicas"[ \t]*:[ \t]*0[ \t]*[,}]`,
		},

		// Labels.
		{
			ID: "label.production", Reason: ReasonProductionEnvironment, Level: High,
			Actions: all,
			Label:   LabelSelector{Keys: []string{"env", "environment"}, Values: []string{"prod", "production", "live"}},
		},
	}
	for i := range rules {
		rules[i] = rules[i].clone()
	}
	return rules
}

// clone gives r slices of its own, so that tuning one rule of a table never
// changes another built from the same literal.
func (r Rule) clone() Rule {
	r.Actions = slices.Clone(r.Actions)
	r.Kinds = slices.Clone(r.Kinds)
	r.Keywords = slices.Clone(r.Keywords)
	r.Require = slices.Clone(r.Require)
	r.Unless = slices.Clone(r.Unless)
	r.Label.Keys = slices.Clone(r.Label.Keys)
	r.Label.Values = slices.Clone(r.Label.Values)
	return r
}
