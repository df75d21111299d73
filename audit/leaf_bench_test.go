package audit_test

import (
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/audit"
)

// BenchmarkLeafHash is what every append costs before the database: vet and encode the event, then
// hash it as a leaf.
func BenchmarkLeafHash(b *testing.B) {
	e := audit.Event{V: 1, Type: audit.HandoffCreated, At: time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC),
		Actor:   audit.Actor{Kind: "device", ID: "0193a4d2-7f2e-7c1a-9b1e-1f2e3d4c5b6a"},
		Subject: audit.Subject{Kind: "handoff", ID: "0193a4d2-8a11-7d3c-8e2f-6a5b4c3d2e1f"}, Channel: "api",
		Details: &audit.Details{Action: "db.migrate", Risk: "high", Reasons: []string{"production_environment", "destructive_sql"},
			TitleHash: audit.TitleHash("Drop the legacy sessions table")}}
	known := func(string) bool { return true }
	b.ReportAllocs()
	for b.Loop() {
		data, err := e.Encode(known)
		if err != nil {
			b.Fatal(err)
		}
		_ = tlog.RecordHash(data)
	}
}
