package redact

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkAdversarial feeds inputs dense with keywords, at two sizes 8× apart: compare their MB/s to
// see that cost stays linear (RE2 and the hand-written scanners never backtrack). It is a benchmark,
// not a timed test, so a loaded machine cannot make it flaky.
func BenchmarkAdversarial(b *testing.B) {
	r := Default()
	units := []string{"password=", "password:\"", "key ", "-----BEGIN RSA PRIVATE KEY-----", "eyJ", "://a:", "%41", "==",
		"aB3+", ":AA", "sk-", "token is ", "- name: DB_PASSWORD\n", `\"password\":\"`, "Authorization: Bearer ",
		"cookie: a=", "curl -u a:b ", "mysql -pX ", "[REDACTED:", "<password>", "setPassword(\"", "--token ", "@tcp(",
		"sig=", "password 'x' ", "secret_key = ", "AccountKey=", "b3BlbnNzaC1rZXktdjE", "pgpass:5432:", "key+", "\"", "\\"}
	for _, u := range units {
		for _, size := range []int{32 << 10, 256 << 10} {
			in := strings.Repeat(u, size/len(u))
			b.Run(fmt.Sprintf("%q/%dKiB", u, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					r.Find(testKey, in)
				}
			})
		}
	}
}
