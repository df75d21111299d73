package redact

import (
	"slices"
	"sync"
	"testing"
)

// TestObserved: an observed redactor reports the kind of every secret it finds — in text, in JSON
// (a number under a password key too) and in a gist — and the redactor it was made from does not.
func TestObserved(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		kinds []string
	)
	base := Default()
	r := base.Observed(func(kind string) {
		mu.Lock()
		defer mu.Unlock()
		kinds = append(kinds, kind)
	})
	took := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Clone(kinds)
		kinds = kinds[:0]
		slices.Sort(out)
		return out
	}
	stripe := "sk_live_51Hx9Kq2Lm7Pq4Rt7Vw1Yz6Bc3Df8Gh"

	base.Redact(testKey, "key "+stripe)
	if got := took(); len(got) != 0 {
		t.Errorf("the unobserved redactor reported %v", got)
	}
	if _, fs := r.Redact(testKey, "key "+stripe+" and no other"); len(fs) != 1 {
		t.Fatalf("findings %v", fs)
	}
	if got := took(); !slices.Equal(got, []string{KindStripeKey}) {
		t.Errorf("Redact reported %v", got)
	}
	if _, _, err := r.RedactJSON(testKey, []byte(`{"note":"`+stripe+`","password":123456789}`)); err != nil {
		t.Fatal(err)
	}
	if got := took(); !slices.Equal(got, []string{KindSecretAssignment, KindStripeKey}) {
		t.Errorf("RedactJSON reported %v", got)
	}
	Gist(r, testKey, "deploy", "high", "title", "uses "+stripe, 280)
	if got := took(); !slices.Contains(got, KindStripeKey) {
		t.Errorf("Gist reported %v", got)
	}
	if _, fs := r.Redact(testKey, "nothing secret here"); len(fs) != 0 || len(took()) != 0 {
		t.Errorf("a clean text reported findings")
	}
}
