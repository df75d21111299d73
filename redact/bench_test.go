package redact

import (
	"os"
	"strings"
	"testing"
)

// typicalPayload is a plausible 4 KB handoff: a shell session with a diff and some log lines,
// holding two secrets among look-alikes. The bench module reads the same file.
var typicalPayload = func() string {
	b, err := os.ReadFile("testdata/typical-payload.txt")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// mixedLines are ordinary lines of logs, code, shell and JSON with the odd keyword.
var mixedLines = []string{
	"2026-03-14T10:01:02Z INFO request id=6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f method=GET path=/v1/items status=200 dur=12ms\n",
	"\tif err := rows.Scan(&it.ID, &it.Name, &it.UpdatedAt); err != nil {\n",
	"kubectl -n staging rollout status deploy/app --timeout=120s\n",
	`{"ts":"2026-03-14T10:01:03Z","level":"info","msg":"cache miss","key":"product:184422","took_ms":4}` + "\n",
	"2026-03-14T10:01:04Z WARN token expired for user=7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f, refreshing\n",
	"+\t// Format the query once; the platform caches prepared statements.\n",
	"git push origin release-prep  # 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a\n",
	"The deploy finished in 42s; see https://ci.internal/jobs/184422 for the full log and artifacts.\n",
}

func repeatTo(s string, n int) string { return strings.Repeat(s, n/len(s)+1)[:n] }

func mixedText(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(mixedLines[i%len(mixedLines)])
		if i%97 == 0 { // now and then a secret
			b.WriteString("export GITHUB_TOKEN=ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5\n")
		}
	}
	return b.String()[:n]
}

func BenchmarkRedact(b *testing.B) {
	cases := []struct{ name, text string }{
		{"4KB_typical", repeatTo(typicalPayload, 4<<10)},
		{"1MiB_mixed", mixedText(1 << 20)},
		{"1MiB_typical_repeated", repeatTo(typicalPayload, 1<<20)},
		{"1MiB_one_line_json", `{"items":[` + strings.Repeat(`{"id":"6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f","name":"widget","key":"product:184422","tags":["a","b"]},`, 9000) + `{}]}`},
	}
	r, key := Default(), []byte("bench")
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			b.ReportAllocs()
			for b.Loop() {
				r.Redact(key, c.text)
			}
		})
	}
}

func BenchmarkRedactJSON(b *testing.B) {
	doc := []byte(`{"tool":"http_request","arguments":{"method":"POST","url":"https://api.partner.example.net/v2/orders",` +
		`"headers":{"Authorization":"Basic c3ZjOmh1bnRlcjIyMjI=","X-Request-Id":"6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f"},` +
		`"body":{"order_id":"18442211","note":"` + strings.Repeat("ship with the blue box please; ", 100) + `"}}}`)
	r, key := Default(), []byte("bench")
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.RedactJSON(key, doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGist is the short, secret-free line every channel carries, from a title and summary
// holding one secret.
func BenchmarkGist(b *testing.B) {
	r := Default()
	key := make([]byte, 32)
	title := "Rotate the deploy key ghp_" + "0123456789abcdefghijklmnopqrstuvwxyz"
	summary := "The old key leaked in a CI log; this replaces it on every runner and revokes the old one."
	b.ReportAllocs()
	for b.Loop() {
		_ = Gist(r, key, "shell.exec", "high", title, summary, 280)
	}
}
