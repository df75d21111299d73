package quiet_test

import (
	"testing"
	"time"

	"github.com/ony-ai/ony/quiet"
)

func TestParse(t *testing.T) {
	t.Parallel()
	ny, _ := time.LoadLocation("America/New_York")
	for _, tc := range []struct {
		spec string
		at   time.Time
		want bool
		err  bool
	}{
		{"22:00-07:00", time.Date(2026, 1, 1, 23, 0, 0, 0, ny), true, false},
		{"22:00-07:00", time.Date(2026, 1, 1, 7, 0, 0, 0, ny), false, false},
		{"22:00-07:00", time.Date(2026, 1, 1, 6, 59, 0, 0, ny), true, false},
		{"09:00-17:00", time.Date(2026, 1, 1, 12, 0, 0, 0, ny), true, false},
		{"09:00-17:00", time.Date(2026, 1, 1, 17, 0, 0, 0, ny), false, false},
		// Fall back: 01:30 happens twice on 2026-11-01; both are quiet.
		{"01:00-02:00", time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), true, false},
		{"01:00-02:00", time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), true, false},
		{"7-9", time.Time{}, false, true},
		{"25:00-07:00", time.Time{}, false, true},
		{"07:00-07:00", time.Time{}, false, true},
		{"07:0-08:00", time.Time{}, false, true},
	} {
		q, set, err := quiet.Parse(tc.spec)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.spec, err)
			continue
		}
		if !tc.err && (!set || q.Contains(tc.at, ny) != tc.want) {
			t.Errorf("%q at %s: got %v, want %v", tc.spec, tc.at.In(ny), q.Contains(tc.at, ny), tc.want)
		}
	}
}

func TestLocation(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{"": "UTC", "Nowhere/Atlantis": "UTC", "Europe/Lisbon": "Europe/Lisbon"} {
		if got := quiet.Location(name).String(); got != want {
			t.Errorf("Location(%q) = %s, want %s", name, got, want)
		}
	}
}
