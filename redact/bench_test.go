package redact

import (
	"strings"
	"testing"
)

// typicalPayload is a plausible 4 KB handoff: a shell session with a diff and some log lines,
// holding two secrets among look-alikes.
const typicalPayload = `$ cd /srv/app && git fetch origin && git checkout -B release-prep origin/develop
$ git log --oneline -3
3f9a8b7 Fix token refresh race in the client
c41d2e0 Bump chart version to 1.14.2
9be1f33 Merge pull request #412 from acme/retry-backoff
$ export DATABASE_URL="postgres://app:Wq8#zL2pVx9mK4rT@db.internal:5432/app?sslmode=require"
$ psql "$DATABASE_URL" -c "UPDATE jobs SET state = 'queued' WHERE state = 'stuck';"
UPDATE 14
$ kubectl -n staging set image deploy/app app=registry.internal/app@sha256:4f7c1d9e2b8a6f3c5e0d1b7a9c8e2f4d6b3a1c5e7f9d0b2a4c6e8f1a3b5d7c9e
deployment.apps/app image updated
$ kubectl -n staging rollout status deploy/app --timeout=120s
deployment "app" successfully rolled out
$ curl -fsS -H "Authorization: Bearer $SERVICE_TOKEN" https://staging.internal/healthz | jq -r .status
ok
diff --git a/internal/store/items.go b/internal/store/items.go
index 3b18e1c..a9f4e2d 100644
--- a/internal/store/items.go
+++ b/internal/store/items.go
@@ -41,12 +41,19 @@ func (s *Store) List(ctx context.Context, f Filter) ([]Item, error) {
-	rows, err := s.db.Query(ctx, "SELECT id, name FROM items WHERE owner = $1", f.Owner)
+	// Format the query once; the platform caches prepared statements.
+	rows, err := s.db.Query(ctx, listItemsSQL, f.Owner, f.Limit)
 	if err != nil {
-		return nil, err
+		return nil, fmt.Errorf("list items: %w", err)
 	}
 	defer rows.Close()
+	items := make([]Item, 0, f.Limit)
 	for rows.Next() {
 		var it Item
-		if err := rows.Scan(&it.ID, &it.Name); err != nil {
+		if err := rows.Scan(&it.ID, &it.Name, &it.UpdatedAt); err != nil {
 			return nil, err
 		}
2026-03-14T10:01:02Z INFO request id=6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f method=GET path=/v1/items status=200 dur=12ms
2026-03-14T10:01:03Z INFO request id=0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d method=POST path=/v1/items status=201 dur=31ms
2026-03-14T10:01:04Z WARN token expired for user=7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f, refreshing
2026-03-14T10:01:05Z DEBUG outbound call to partner api_key=gS7kP2mQ9vX4tB8nR1wL6yC3 region=eu-west-1
2026-03-14T10:01:06Z INFO cache hit key=product:184422 etag="9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"
2026-03-14T10:01:07Z INFO deploy 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a image=sha256:0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c
`

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
