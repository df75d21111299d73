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

// TestExpiryIsScheduled: the handoff expiry sweep (issue 12) is among the periodic jobs too; without
// it no handoff would expire, since creates no longer queue an expiry job of their own.
func TestExpiryIsScheduled(t *testing.T) {
	t.Parallel()
	if !slices.ContainsFunc((&app.App{}).PeriodicJobs(), handoff.IsExpiryJob) {
		t.Fatal("the expiry sweep is not a periodic job")
	}
}
