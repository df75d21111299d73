package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// benchCreateBody is the shape onybench posts: a ~2 KB body, most of it a 1.5 KB command payload.
func benchCreateBody(b *testing.B) []byte {
	body, err := json.Marshal(map[string]any{
		"action":  "deploy.web",
		"title":   "Restart web (1)",
		"summary": "Roll the web deployment to pick up the new config map.",
		"payload": map[string]string{"kind": "command", "content": strings.Repeat("$ kubectl -n web rollout restart deploy/web && kubectl -n web rollout status deploy/web --timeout=120s\n", 15)},
		"labels":  map[string]string{"env": "staging", "team": "web"},
	})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

func BenchmarkDecodeCreate(b *testing.B) {
	body := benchCreateBody(b)
	b.Run("whole", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeCreate(bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("checkTokens", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if err := checkTokens(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
