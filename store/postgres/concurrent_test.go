package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store/postgres"
)

// TestSplitRolesStartTogether: replicas that start at the same moment on a fresh schema, each migrating
// as the owner and granting the runtime role, all come up. The grants touch the same catalog rows, so
// outside the migration lock PostgreSQL refuses one of them ("tuple concurrently updated").
func TestSplitRolesStartTogether(t *testing.T) {
	t.Parallel()
	const rounds, replicas = 12, 4
	failed := 0
	for round := 0; round < rounds; round++ {
		appURL, ownerURL := testdb.PostgresSplitURLs(t)
		errs := make([]error, replicas)
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range errs {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				s, err := postgres.Open(context.Background(), postgres.Options{URL: appURL, MigrateURL: ownerURL, MaxConns: 2}, testdb.Discard)
				if err != nil {
					errs[i] = err
					return
				}
				errs[i] = s.Close()
			}()
		}
		start.Done()
		done.Wait()
		var roundErr error
		for i, err := range errs {
			if err != nil {
				roundErr = fmt.Errorf("replica %d: %w", i, err)
			}
		}
		if roundErr != nil {
			failed++
			t.Logf("round %d: %v", round, roundErr)
		}
	}
	t.Logf("%d replicas started together %d times: %d rounds with a failure", replicas, rounds, failed)
	if failed > 0 {
		t.Fatalf("%d of %d rounds had a replica fail to start", failed, rounds)
	}
}
