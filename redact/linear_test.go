package redact

import (
	"strings"
	"testing"
	"time"
)

// raceEnabled is set by race_test.go.
var raceEnabled bool

// Adversarial inputs dense with keywords must still cost time linear in their size: 8× the
// input may cost at most 24× the time (allowing for noise on a shared machine).
func TestLinearTime(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing test: skipped with -short and under the race detector")
	}
	r := Default()
	units := []string{"password=", "password:\"", "key ", "-----BEGIN RSA PRIVATE KEY-----", "eyJ", "://a:", "%41", "==",
		"aB3+", ":AA", "sk-", "token is ", "- name: DB_PASSWORD\n", `\"password\":\"`, "Authorization: Bearer ",
		"cookie: a=", "curl -u a:b ", "mysql -pX ", "[REDACTED:", "<password>", "setPassword(\"", "--token ", "@tcp(",
		"sig=", "password 'x' ", "secret_key = ", "AccountKey=", "b3BlbnNzaC1rZXktdjE", "pgpass:5432:", "key+", "\"", "\\"}
	best := func(in string) time.Duration {
		d := time.Duration(1 << 62)
		for range 3 {
			st := time.Now()
			r.Find(testKey, in)
			d = min(d, time.Since(st))
		}
		return d
	}
	for _, u := range units {
		small := strings.Repeat(u, (32<<10)/len(u))
		big := strings.Repeat(u, (256<<10)/len(u))
		ds, db := best(small), best(big)
		if db > 24*ds && db > 20*time.Millisecond {
			t.Errorf("%q: 32 KiB in %v, 256 KiB in %v: not linear", u, ds, db)
		}
	}
}
