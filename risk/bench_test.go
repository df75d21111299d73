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
		{"1MiB_script", Input{Action: "shell.exec", PayloadKind: KindCommand, Payload: repeatTo(typicalScript, 1<<20)}},
		{"1MiB_text_few_keywords", Input{Action: "deploy", PayloadKind: KindText,
			Payload: repeatTo(logLine, 1<<20-len(typicalScript)) + typicalScript}},
		{"1MiB_keyword_dense", Input{Action: "db.query", PayloadKind: KindCommand,
			Payload: repeatTo("rm push delete update drop truncate alter curl sudo su chmod /etc /dev/ helm replicas destroy ", 1<<20)}},
		{"1MiB_log_kind", Input{Action: "shell.exec", PayloadKind: KindLog, Payload: repeatTo(typicalScript, 1<<20)}},
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
