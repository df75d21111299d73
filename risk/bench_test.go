package risk

import (
	"strings"
	"testing"
)

// typicalScript is a plausible shell handoff: mostly harmless commands with
// a few that trip rules, so prefilters pass and patterns really run.
const typicalScript = `#!/usr/bin/env bash
set -euo pipefail
cd /srv/app
git fetch origin && git checkout -B release-prep origin/develop
export DATABASE_URL="postgres://app@db.internal:5432/app?sslmode=require"
psql "$DATABASE_URL" -c "UPDATE jobs SET state = 'queued' WHERE state = 'stuck';"
psql "$DATABASE_URL" -c "DELETE FROM sessions WHERE expires_at < now();"
rm -rf ./build ./dist
npm ci --no-audit && npm run build
docker build -t registry.internal/app:$(git rev-parse --short HEAD) .
kubectl -n staging set image deploy/app app=registry.internal/app:latest
kubectl -n staging rollout status deploy/app --timeout=120s
curl -fsS https://staging.internal/healthz | jq -r .status
echo "deployed $(date -u +%FT%TZ)" >> ./deploy.log
git push origin release-prep
`

// typicalDiff is a code review handoff: prose-like code with the odd word
// that a keyword shares, but nothing dangerous.
const typicalDiff = `diff --git a/internal/store/items.go b/internal/store/items.go
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
-		out = append(out, it)
+		items = append(items, it)
 	}
-	return out, rows.Err()
+	return items, rows.Err()
 }
+
+// Delete removes one item; callers must check permissions first.
+func (s *Store) Delete(ctx context.Context, id int64) error {
+	_, err := s.db.Exec(ctx, "DELETE FROM items WHERE id = $1", id)
+	return err
+}
`

func repeatTo(s string, n int) string {
	return strings.Repeat(s, n/len(s)+1)[:n]
}

func BenchmarkDerive(b *testing.B) {
	logLine := "2026-01-02T03:04:05Z INFO request handled method=GET path=/api/v1/items status=200 duration=12ms user=42\n"
	cases := []struct {
		name string
		in   Input
	}{
		{"4KB_script", Input{Action: "shell.exec", PayloadKind: KindCommand, Payload: repeatTo(typicalScript, 4<<10)}},
		// The onybench create's payload: every line passes the Kubernetes keyword, none deletes.
		{"1.5KB_rollouts", Input{Action: "shell.exec", PayloadKind: KindCommand,
			Payload: strings.Repeat("$ kubectl -n web rollout restart deploy/web && kubectl -n web rollout status deploy/web --timeout=120s\n", 15)}},
		{"4KB_diff", Input{Action: "git.push", PayloadKind: KindDiff, Payload: repeatTo(typicalDiff, 4<<10)}},
		{"1MiB_diff", Input{Action: "git.push", PayloadKind: KindDiff, Payload: repeatTo(typicalDiff, 1<<20)}},
		{"1MiB_script", Input{Action: "shell.exec", PayloadKind: KindCommand, Payload: repeatTo(typicalScript, 1<<20)}},
		{"1MiB_text_few_keywords", Input{Action: "deploy", PayloadKind: KindText,
			Payload: repeatTo(logLine, 1<<20-len(typicalScript)) + typicalScript}},
		{"1MiB_keyword_dense", Input{Action: "db.query", PayloadKind: KindCommand,
			Payload: repeatTo("rm push delete update drop truncate alter curl sudo su chmod /etc /dev/ helm replicas destroy ", 1<<20)}},
		{"1MiB_log_kind_scanned_too", Input{Action: "shell.exec", PayloadKind: KindLog, Payload: repeatTo(typicalScript, 1<<20)}},
	}
	e := Default()
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.in.Payload)))
			b.ReportAllocs()
			for b.Loop() {
				e.Derive(c.in)
			}
		})
	}
}
