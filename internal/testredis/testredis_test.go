package testredis

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder captures how URL gives up; Fatalf and Skipf end the goroutine just as the real ones do.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func run(t *testing.T) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		URL(r)
	}()
	<-done
	return r
}

func TestUnreachableFailsInCI(t *testing.T) {
	t.Setenv("ONY_TEST_REDIS_URL", "redis://user:s3cret@127.0.0.1:1/0")
	t.Setenv("CI", "true")
	r := run(t)
	if !r.failed {
		t.Fatalf("with CI=true an unreachable Redis must fail the test (skipped=%v)", r.skipped)
	}
	if strings.Contains(r.msg, "s3cret") {
		t.Fatalf("message leaks the password: %q", r.msg)
	}
}

func TestUnreachableSkipsLocally(t *testing.T) {
	t.Setenv("ONY_TEST_REDIS_URL", "redis://127.0.0.1:1/0")
	t.Setenv("CI", "")
	if r := run(t); !r.skipped || !strings.Contains(r.msg, "ONY_TEST_REDIS_URL") {
		t.Fatalf("without CI an unreachable Redis must skip with a hint (failed=%v, msg=%q)", r.failed, r.msg)
	}
}

func TestPrefixIsUnique(t *testing.T) {
	if a, b := Prefix(t), Prefix(t); a == b {
		t.Fatalf("two prefixes are equal: %q", a)
	}
}
