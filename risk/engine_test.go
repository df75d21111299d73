package risk

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

type deriveCase struct {
	name    string
	in      Input
	level   Level
	reasons []Reason
	rules   []string // when set, exactly these rules must fire
}

func cmd(s string) Input { return Input{Action: "shell.exec", PayloadKind: KindCommand, Payload: s} }

func sql(s string) Input { return Input{Action: "db.query", PayloadKind: KindCommand, Payload: s} }

func rs(r ...Reason) []Reason { return r }

const (
	rd  = ReasonRecursiveDelete
	pe  = ReasonPrivilegeEscalation
	p2s = ReasonPipeToShell
)

func deriveCases() []deriveCase {
	return []deriveCase{
		// Recursive delete.
		{name: "rm -rf dir", in: cmd("rm -rf ./build"), level: High, reasons: rs(rd),
			rules: []string{"shell.rm_recursive", "shell.rm_recursive_force"}},
		{name: "rm -r -f", in: cmd("rm -r -f dist"), level: High, reasons: rs(rd)},
		{name: "rm long options", in: cmd("rm --recursive --force node_modules"), level: High, reasons: rs(rd)},
		{name: "rm -fr", in: cmd("rm -fr tmp"), level: High, reasons: rs(rd)},
		{name: "rm -Rf", in: cmd("rm -Rf tmp"), level: High, reasons: rs(rd)},
		{name: "rm --force -r", in: cmd("rm --force -r tmp"), level: High, reasons: rs(rd)},
		{name: "rm -rfv", in: cmd("rm -vrf tmp"), level: High, reasons: rs(rd)},
		{name: "rm -rf root", in: cmd("rm -rf /"), level: Critical, reasons: rs(rd),
			rules: []string{"shell.rm_recursive", "shell.rm_recursive_force", "shell.rm_root"}},
		{name: "rm -rf root glob", in: cmd("rm -rf /*"), level: Critical, reasons: rs(rd)},
		{name: "rm -rf tilde", in: cmd("rm -rf ~"), level: Critical, reasons: rs(rd)},
		{name: "rm -rf $HOME", in: cmd("rm -rf $HOME"), level: Critical, reasons: rs(rd)},
		{name: "rm -rf quoted home", in: cmd(`rm -rf "${HOME}/"`), level: Critical, reasons: rs(rd)},
		{name: "rm -r -f root", in: cmd("rm -r -f /"), level: Critical, reasons: rs(rd)},
		{name: "rm target before flags", in: cmd("rm / -rf --no-preserve-root"), level: Critical, reasons: rs(rd)},
		{name: "rm root inside sh -c", in: cmd(`sh -c "rm -rf /"`), level: Critical, reasons: rs(rd)},
		{name: "rm by path", in: cmd("/bin/rm -rf /"), level: Critical, reasons: rs(rd)},
		{name: "rm -rf subdir of root is not root", in: cmd("rm -rf /tmp/cache"), level: High, reasons: rs(rd)},
		{name: "rm -rf in home is not home", in: cmd("rm -rf ~/projects/old"), level: High, reasons: rs(rd)},
		{name: "rm -r without force is medium", in: cmd("rm -r old-logs"), level: Medium, reasons: rs(rd),
			rules: []string{"shell.rm_recursive"}},
		{name: "rm -r root without force", in: cmd("rm -r /"), level: Medium, reasons: rs(rd)},
		{name: "rm -f alone", in: cmd("rm -f foo.txt"), level: Low, reasons: rs()},
		{name: "rm with -f in a file name", in: cmd("rm -r ./my-files"), level: Medium, reasons: rs(rd)},
		{name: "rmdir", in: cmd("rmdir -p a/b"), level: Low, reasons: rs()},
		{name: "docker --rm", in: cmd("docker run --rm -it -v /:/host alpine"), level: Low, reasons: rs()},

		// Privilege escalation.
		{name: "sudo", in: cmd("sudo apt-get install -y jq"), level: High, reasons: rs(pe)},
		{name: "su -c", in: cmd("su -c 'id'"), level: High, reasons: rs(pe)},
		{name: "su user -c", in: cmd("su postgres -c psql"), level: High, reasons: rs(pe), rules: []string{"shell.su"}},
		{name: "doas", in: cmd("doas reboot"), level: High, reasons: rs(pe)},
		{name: "sudoers file is not sudo", in: cmd("cat /etc/sudoers.d/readme"), level: Low, reasons: rs()},
		{name: "words containing su", in: cmd("echo result issue summary"), level: Low, reasons: rs()},

		// Pipe to shell.
		{name: "curl to bash", in: cmd("curl -fsSL https://get.example.com/install.sh | bash"), level: High, reasons: rs(p2s)},
		{name: "wget to sudo sh", in: cmd("wget -qO- https://x.example | sudo sh"), level: High, reasons: rs(pe, p2s)},
		{name: "curl to python", in: cmd("curl -s https://x.example/a.py | python3 -"), level: High, reasons: rs(p2s)},
		{name: "curl through tee to /bin/sh", in: cmd("curl -s https://x.example | tee log | /bin/sh"), level: High, reasons: rs(p2s)},
		{name: "process substitution", in: cmd("bash <(curl -s https://x.example)"), level: High, reasons: rs(p2s)},
		{name: "sh -c $(curl)", in: cmd(`sh -c "$(curl -fsSL https://x.example)"`), level: High, reasons: rs(p2s)},
		{name: "curl to jq", in: cmd("curl -s https://api.example | jq .name"), level: Low, reasons: rs()},
		{name: "download then run is not a pipe", in: cmd("curl -o i.sh https://x.example && sh i.sh"), level: Low, reasons: rs()},
		{name: "curl to shasum", in: cmd("curl -s https://x.example | shasum -a 256"), level: Low, reasons: rs()},

		// World writable.
		{name: "chmod 777", in: cmd("chmod 777 /srv/data"), level: Medium, reasons: rs(ReasonWorldWritable)},
		{name: "chmod -R 777", in: cmd("chmod -R 777 /var/www"), level: Medium, reasons: rs(ReasonWorldWritable)},
		{name: "chmod a+rwx", in: cmd("chmod a+rwx file"), level: Medium, reasons: rs(ReasonWorldWritable)},
		{name: "chmod 0777", in: cmd("chmod 0777 file"), level: Medium, reasons: rs(ReasonWorldWritable)},
		{name: "chmod 755", in: cmd("chmod 755 run.sh"), level: Low, reasons: rs()},
		{name: "chmod u+x", in: cmd("chmod u+x run.sh"), level: Low, reasons: rs()},

		// System paths and devices.
		{name: "redirect into /etc", in: cmd("echo '1.2.3.4 db' > /etc/hosts"), level: High, reasons: rs(ReasonSystemPathWrite)},
		{name: "sudo tee into /etc", in: cmd("echo deb x | sudo tee -a /etc/apt/sources.list"), level: High,
			reasons: rs(pe, ReasonSystemPathWrite)},
		{name: "append into /usr", in: cmd("cat tool >> /usr/local/bin/tool"), level: High, reasons: rs(ReasonSystemPathWrite)},
		{name: "stderr to /dev/null", in: cmd("ls 2>/dev/null > /tmp/out"), level: Low, reasons: rs()},
		{name: "reading /etc", in: cmd("cat /etc/hosts | grep db"), level: Low, reasons: rs()},
		{name: "arrow is not a redirect", in: cmd("echo 'a -> /etc/x'"), level: Low, reasons: rs()},
		{name: "dd to disk", in: cmd("dd if=disk.img of=/dev/sda bs=4M"), level: Critical, reasons: rs(ReasonDiskOverwrite)},
		{name: "dd to /dev/null", in: cmd("dd if=/dev/zero of=/dev/null count=1"), level: Low, reasons: rs()},
		{name: "mkfs", in: cmd("mkfs.ext4 /dev/sdb1"), level: Critical, reasons: rs(ReasonDiskOverwrite)},
		{name: "redirect onto a disk", in: cmd("cat image > /dev/sda"), level: Critical,
			reasons: rs(ReasonSystemPathWrite, ReasonDiskOverwrite)},

		// Git.
		{name: "force push", in: cmd("git push --force origin feature/x"), level: High, reasons: rs(ReasonForcePush)},
		{name: "push -f", in: cmd("git push -f"), level: High, reasons: rs(ReasonForcePush)},
		{name: "force with lease", in: cmd("git push --force-with-lease origin feat"), level: High, reasons: rs(ReasonForcePush)},
		{name: "plus refspec", in: cmd("git push origin +feat"), level: High, reasons: rs(ReasonForcePush)},
		{name: "push main", in: cmd("git push origin main"), level: Medium, reasons: rs(ReasonProtectedBranchPush)},
		{name: "push -u master", in: cmd("git push -u origin master"), level: Medium, reasons: rs(ReasonProtectedBranchPush)},
		{name: "push refspec to release", in: cmd("git push origin HEAD:release/1.2"), level: Medium, reasons: rs(ReasonProtectedBranchPush)},
		{name: "push production", in: cmd("git push origin production"), level: Medium, reasons: rs(ReasonProtectedBranchPush)},
		{name: "push with -C", in: cmd("git -C repo push origin main"), level: Medium, reasons: rs(ReasonProtectedBranchPush)},
		{name: "push feature branch", in: Input{Action: "git.push", PayloadKind: KindCommand, Payload: "git push origin feature/login"},
			level: Low, reasons: rs()},
		{name: "push main-like branch", in: cmd("git push origin main-fix"), level: Low, reasons: rs()},
		{name: "push prod-like branch", in: cmd("git push origin products-page"), level: Low, reasons: rs()},
		{name: "force push to main", in: cmd("git push --force origin main"), level: High,
			reasons: rs(ReasonForcePush, ReasonProtectedBranchPush)},
		{name: "follow-tags is not force", in: cmd("git push --follow-tags origin feat"), level: Low, reasons: rs()},
		{name: "commit message mentioning push", in: cmd(`git commit -m "push main -f"`), level: Low, reasons: rs()},

		// SQL.
		{name: "drop table", in: sql("DROP TABLE users;"), level: Critical, reasons: rs(ReasonSQLDrop)},
		{name: "drop database lower case", in: sql("drop database app"), level: Critical, reasons: rs(ReasonSQLDrop)},
		{name: "drop schema", in: sql("DROP SCHEMA public CASCADE;"), level: Critical, reasons: rs(ReasonSQLDrop)},
		{name: "truncate table", in: sql("TRUNCATE TABLE events;"), level: High, reasons: rs(ReasonSQLTruncate)},
		{name: "truncate bare name", in: sql("truncate orders;"), level: High, reasons: rs(ReasonSQLTruncate)},
		{name: "delete without where", in: sql("DELETE FROM users;"), level: High, reasons: rs(ReasonSQLUnboundedDelete)},
		{name: "delete with where", in: sql("delete from users where id = 1;"), level: Low, reasons: rs()},
		{name: "delete with where on next line", in: sql("DELETE FROM users\n  WHERE created_at < now() - interval '1 day';"),
			level: Low, reasons: rs()},
		{name: "delete quoted table with where", in: sql(`DELETE FROM "public"."users" WHERE id = 1;`), level: Low, reasons: rs()},
		{name: "delete in psql -c", in: cmd(`psql -c "DELETE FROM sessions"`), level: High, reasons: rs(ReasonSQLUnboundedDelete)},
		{name: "second statement unbounded", in: sql("DELETE FROM users WHERE id=1; DELETE FROM logs;"), level: High,
			reasons: rs(ReasonSQLUnboundedDelete)},
		{name: "delete where true", in: sql("DELETE FROM t WHERE true;"), level: High, reasons: rs(ReasonSQLUnboundedDelete),
			rules: []string{"sql.delete_where_true"}},
		{name: "update without where", in: sql("UPDATE accounts SET balance = 0;"), level: High, reasons: rs(ReasonSQLUnboundedUpdate)},
		{name: "update with literal and where", in: sql("UPDATE users SET name = 'o''brien', note = \"n/a\" WHERE id = 1;"), level: Low, reasons: rs()},
		{name: "update where 1=1", in: sql("UPDATE t SET a = 1 WHERE 1=1"), level: High, reasons: rs(ReasonSQLUnboundedUpdate),
			rules: []string{"sql.update_where_true"}},
		{name: "upsert is not an update", in: sql("INSERT INTO t (id, n) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET n = excluded.n;"),
			level: Low, reasons: rs()},
		{name: "alter table", in: sql("ALTER TABLE users ADD COLUMN age int;"), level: Medium, reasons: rs(ReasonSQLAlter)},
		{name: "select with deleted column", in: sql("SELECT * FROM users WHERE deleted = false"), level: Low, reasons: rs()},
		{name: "prose look-alikes", in: Input{Action: "note", PayloadKind: KindText,
			Payload: "The dropdown table shows truncated names. We should truncate the output, delete from the cache any stale entries and update the docs."},
			level: Low, reasons: rs()},
		{name: "keyword inside a word", in: Input{Action: "note", PayloadKind: KindText,
			Payload: "Move the backdrop table left; undelete from trash; autoupdate t set x = 1"},
			level: Low, reasons: rs()},
		{name: "migration diff", in: Input{Action: "db.migrate", PayloadKind: KindDiff,
			Payload: "+ALTER TABLE orders ADD COLUMN note text;\n+DROP TABLE legacy_orders;\n"},
			level: Critical, reasons: rs(ReasonSchemaMigration, ReasonSQLDrop, ReasonSQLAlter)},
		{name: "diff continues a statement", in: Input{Action: "db.migrate", PayloadKind: KindDiff,
			Payload: "+DELETE FROM orders\n+WHERE status = 'void';\n"},
			level: Medium, reasons: rs(ReasonSchemaMigration)},
		{name: "a log label does not switch the rules off", in: Input{Action: "db.query", PayloadKind: KindLog, Payload: "DROP TABLE users; sudo rm -rf /"},
			level: Critical, reasons: rs(ReasonRecursiveDelete, ReasonPrivilegeEscalation, ReasonSQLDrop)},
		{name: "long s folds like RE2", in: sql("DROP \u017fCHEMA app"), level: Critical, reasons: rs(ReasonSQLDrop)},

		// Infrastructure.
		{name: "terraform destroy", in: cmd("terraform destroy -auto-approve"), level: Critical, reasons: rs(ReasonInfraDestroy)},
		{name: "terraform apply -destroy", in: cmd("terraform -chdir=infra apply -destroy"), level: Critical, reasons: rs(ReasonInfraDestroy)},
		{name: "tofu destroy", in: cmd("tofu destroy"), level: Critical, reasons: rs(ReasonInfraDestroy)},
		{name: "terraform plan -destroy only plans", in: cmd("terraform plan -destroy"), level: Low, reasons: rs()},
		{name: "plan file named destroy", in: cmd("terraform apply destroy.tfplan"), level: Low, reasons: rs()},
		{name: "kubectl delete", in: cmd("kubectl -n prod delete pod web-1"), level: High, reasons: rs(ReasonK8sDelete)},
		{name: "kubectl get", in: cmd("kubectl get pods -l app=delete-me"), level: Low, reasons: rs()},
		{name: "helm uninstall", in: cmd("helm uninstall web --namespace prod"), level: High, reasons: rs(ReasonK8sDelete)},
		{name: "scale to zero", in: cmd("kubectl scale deploy/web --replicas=0"), level: High, reasons: rs(ReasonScaleToZero)},
		{name: "scale to three", in: cmd("kubectl scale deploy/web --replicas=3"), level: Low, reasons: rs()},
		{name: "scale to ten", in: cmd("kubectl scale deploy/web --replicas=10"), level: Low, reasons: rs()},
		{name: "patch replicas 0", in: cmd(`kubectl patch deploy web -p '{"spec":{"replicas":0}}'`), level: High, reasons: rs(ReasonScaleToZero)},
		{name: "manifest diff to zero", in: Input{Action: "deploy", PayloadKind: KindDiff, Payload: " spec:\n-  replicas: 3\n+  replicas: 0\n"},
			level: High, reasons: rs(ReasonDeploy, ReasonScaleToZero)},
		{name: "manifest diff from zero", in: Input{Action: "deploy", PayloadKind: KindDiff, Payload: " spec:\n-  replicas: 0\n+  replicas: 2\n"},
			level: Medium, reasons: rs(ReasonDeploy)},

		// Labels.
		{name: "prod label", in: Input{Action: "deploy", Labels: map[string]string{"env": "prod"}}, level: High,
			reasons: rs(ReasonDeploy, ReasonProductionEnvironment), rules: []string{"label.production"}},
		{name: "label key and value case", in: Input{Action: "deploy", Labels: map[string]string{"Environment": "PRODUCTION"}}, level: High,
			reasons: rs(ReasonDeploy, ReasonProductionEnvironment)},
		{name: "label value spaces", in: Input{Action: "shell.exec", Labels: map[string]string{"env": " Live "}}, level: High,
			reasons: rs(ReasonProductionEnvironment)},
		{name: "staging label", in: Input{Action: "deploy", Labels: map[string]string{"env": "staging"}}, level: Medium, reasons: rs(ReasonDeploy)},
		{name: "prod under another key", in: Input{Action: "deploy", Labels: map[string]string{"tier": "prod"}}, level: Medium, reasons: rs(ReasonDeploy)},
		{name: "prod-like value", in: Input{Action: "deploy", Labels: map[string]string{"env": "preprod"}}, level: Medium, reasons: rs(ReasonDeploy)},

		// Actions.
		{name: "payment", in: Input{Action: "payment"}, level: Medium, reasons: rs(ReasonPayment), rules: []string{}},
		{name: "db.migrate", in: Input{Action: "db.migrate"}, level: Medium, reasons: rs(ReasonSchemaMigration)},
		{name: "infra.apply", in: Input{Action: "infra.apply", PayloadKind: KindCommand, Payload: "terraform plan -out plan.tfplan"},
			level: Medium, reasons: rs(ReasonInfraChange)},
		{name: "file.delete", in: Input{Action: "file.delete", PayloadKind: KindText, Payload: "/srv/app/tmp/a.txt"}, level: Medium,
			reasons: rs(ReasonFileDelete)},
		{name: "shell.exec harmless", in: cmd("ls -la"), level: Low, reasons: rs()},
		{name: "unknown action", in: Input{Action: "acme.frobnicate", PayloadKind: KindText, Payload: "hello"}, level: Low, reasons: rs()},
		{name: "unknown action, dangerous payload", in: Input{Action: "acme.run", PayloadKind: KindCommand, Payload: "rm -rf /"},
			level: Critical, reasons: rs(rd)},
		{name: "action case and space", in: Input{Action: " Payment "}, level: Medium, reasons: rs(ReasonPayment)},
		{name: "unknown kind does not disable rules", in: Input{Action: "db.query", PayloadKind: "yaml", Payload: "DROP TABLE x"},
			level: Critical, reasons: rs(ReasonSQLDrop)},
		{name: "empty input", in: Input{}, level: Low, reasons: rs()},

		// Combinations, multi-line payloads and pipelines.
		{name: "everything at once", in: Input{Action: "deploy", PayloadKind: KindCommand, Labels: map[string]string{"env": "prod"},
			Payload: "sudo rm -rf / && psql -c 'DROP TABLE users'"},
			level: Critical, reasons: rs(ReasonDeploy, rd, pe, ReasonSQLDrop, ReasonProductionEnvironment)},
		{name: "reasons deduplicated", in: cmd("rm -rf /a\nrm -rf /b\nrm -r c"), level: High, reasons: rs(rd)},
		{name: "max wins over base", in: Input{Action: "payment", PayloadKind: KindCommand, Payload: "terraform destroy"},
			level: Critical, reasons: rs(ReasonPayment, ReasonInfraDestroy)},
		{name: "multi-line script", in: cmd("set -e\ncd /srv\nrm -rf ./cache\ngit push origin feature/x\n"), level: High, reasons: rs(rd)},
		{name: "newline splits a command", in: cmd("echo rm\n-rf /"), level: Low, reasons: rs()},
		{name: "CRLF line endings", in: cmd("cd /\r\nrm -rf /\r\n"), level: Critical, reasons: rs(rd)},
		{name: "pipeline", in: cmd("find . -name '*.tmp' | xargs rm -rf && kubectl get pods | grep web"), level: High, reasons: rs(rd)},
		{name: "chained commands", in: cmd("make build; git push --force; chmod 777 out"), level: High,
			reasons: rs(ReasonWorldWritable, ReasonForcePush)},
	}
}

func TestDerive(t *testing.T) {
	t.Parallel()
	e := Default()
	for _, tc := range deriveCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := e.Derive(tc.in)
			if got.Level != tc.level {
				t.Errorf("level = %v, want %v (rules %v)", got.Level, tc.level, got.Rules)
			}
			if !slices.Equal(got.Reasons, tc.reasons) {
				t.Errorf("reasons = %v, want %v (rules %v)", got.Reasons, tc.reasons, got.Rules)
			}
			if tc.rules != nil && !slices.Equal(got.Rules, tc.rules) {
				t.Errorf("rules = %v, want %v", got.Rules, tc.rules)
			}
		})
	}
}

// TestPrefilterIsOnlyAnOptimisation checks that keywords never hide a match.
func TestPrefilterIsOnlyAnOptimisation(t *testing.T) {
	t.Parallel()
	e := Default()
	for _, tc := range deriveCases() {
		if with, without := e.derive(tc.in, true), e.derive(tc.in, false); !reflect.DeepEqual(with, without) {
			t.Errorf("%s: with prefilter %+v, without %+v", tc.name, with, without)
		}
	}
}

func TestEveryBuiltinRuleIsExercised(t *testing.T) {
	t.Parallel()
	fired := map[string]bool{}
	for _, tc := range deriveCases() {
		for _, id := range Default().Derive(tc.in).Rules {
			fired[id] = true
		}
	}
	for _, r := range DefaultRules() {
		if !fired[r.ID] {
			t.Errorf("no test case fires rule %s", r.ID)
		}
	}
}

func TestDeriveConcurrent(t *testing.T) {
	t.Parallel()
	e := Default()
	cases := deriveCases()
	want := make([]Assessment, len(cases))
	for i, tc := range cases {
		want[i] = e.Derive(tc.in)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(cases))
	for range 8 {
		wg.Go(func() {
			for i, tc := range cases {
				if got := e.Derive(tc.in); !reflect.DeepEqual(got, want[i]) {
					errs <- fmt.Sprintf("%s: got %+v, want %+v", tc.name, got, want[i])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "shell.exec", true},
		{"shell.*", "shell.exec", true},
		{"shell.*", "shell.", true},
		{"shell.*", "shell", false},
		{"shell.*", "shellx.exec", false},
		{"db.migrate", "db.migrate", true},
		{"db.migrate", "db.migrate2", false},
		{"*.delete", "file.delete", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a**", "a", true},
	} {
		if got := glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// TestPrefilterOnGeneratedScripts builds payloads from fragments that sit
// near rule boundaries, where random fuzzing rarely goes, and checks that
// the prefilter agrees with plain matching.
func TestPrefilterOnGeneratedScripts(t *testing.T) {
	t.Parallel()
	words := []string{
		"rm", "-rf", "-r", "-f", "--force", "/", "~", "$HOME", "sudo", "su", "-c", "doas", "curl", "wget", "|", "sh",
		"bash", "<(", "$(", "chmod", "777", "a+w", ">", ">>", "tee", "/etc/x", "/dev/sda", "dd", "of=", "mkfs",
		"git", "push", "-C", "main", "+feat", "HEAD:prod", "DROP", "TABLE", "truncate", "DELETE", "FROM", "users",
		"WHERE", "true", "1=1", "UPDATE", "SET", "a", "=", "'x'", `"y"`, "ALTER", "terraform", "destroy", "apply",
		"-destroy", "kubectl", "delete", "scale", "--replicas=0", "replicas:", "0", "helm", "uninstall",
		";", "&&", "\n", "\n+", "\n-", " ", "\t", "\r\n", "'", `"`, "(", ")", "\u017f", "\u212a", "Ⅹ", "\xff",
	}
	e := Default()
	rng := rand.New(rand.NewPCG(1, 2))
	n := 4000
	if testing.Short() {
		n = 500
	}
	for range n {
		var b strings.Builder
		for range 1 + rng.IntN(24) {
			w := words[rng.IntN(len(words))]
			if rng.IntN(4) == 0 {
				w = strings.ToUpper(w)
			}
			b.WriteString(w)
			if rng.IntN(3) > 0 {
				b.WriteByte(' ')
			}
		}
		in := Input{Action: "shell.exec", PayloadKind: KindCommand, Payload: b.String()}
		if with, without := e.derive(in, true), e.derive(in, false); !reflect.DeepEqual(with, without) {
			t.Fatalf("payload %q: with prefilter %+v, without %+v", in.Payload, with, without)
		}
	}
}

func TestNeededLiteral(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ pattern, want string }{
		{`kubectl[ \t]+delete`, "kubectl"},
		{`(?i)DROP[ \t]+TABLE`, "table"}, // the longest, lowered
		{`(?:kubectl|oc)[ \t]delete\b`, "delete"},
		{`(?:delete|remove)`, ""}, // either one will do, so neither is needed
		{`x(?:destroy)?`, "x"},    // an optional part is not needed
		{`(?:terraform )+apply`, "terraform "},
		{`xa{2,}`, "x"}, // Simplify spells the repeat as a, a+: literals are not joined
		{`(?:abc){0,3}z`, "z"},
		{`caf\x{e9}`, ""}, // not ASCII: the lowered twin keeps the bytes, but fold variants would not
		{`[`, ""},         // does not parse
	} {
		if got := neededLiteral(tc.pattern); got != tc.want {
			t.Errorf("neededLiteral(%q) = %q, want %q", tc.pattern, got, tc.want)
		}
	}
	// The built-in Kubernetes delete rule's keyword is the tool; the verb is what a payload of
	// harmless kubectl lines lacks.
	for _, r := range Default().rules {
		if r.id == "k8s.delete" && r.needs != "delete" {
			t.Errorf("k8s.delete needs %q, want %q", r.needs, "delete")
		}
	}
}
