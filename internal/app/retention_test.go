package app_test

import (
	"slices"
	"testing"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/app"
)

// TestRetentionIsScheduled: the payload retention sweep is among the periodic jobs StartJobs hands the
// job runner, whose elected leader enqueues them (once across replicas).
func TestRetentionIsScheduled(t *testing.T) {
	t.Parallel()
	if !slices.ContainsFunc((&app.App{}).PeriodicJobs(), handoff.IsRetentionJob) {
		t.Fatal("the retention sweep is not a periodic job")
	}
}
