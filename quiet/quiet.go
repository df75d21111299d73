// Package quiet reads people's quiet hours and time zones: the wall-clock spans during which ladders
// that respect quiet hours leave a person alone, read on that person's own clock.
package quiet

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Hours is a daily span of wall-clock time in a person's own time zone during which ladders that
// respect quiet hours leave them alone. Start > End wraps midnight (22:00-07:00).
type Hours struct {
	Start, End int // minutes after local midnight
}

// Parse reads "HH:MM-HH:MM"; the empty string is "none" (ok, zero value, false).
func Parse(s string) (q Hours, set bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Hours{}, false, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Hours{}, false, fmt.Errorf(`quiet hours must look like "22:00-07:00"`)
	}
	if q.Start, err = clockMinutes(a); err == nil {
		q.End, err = clockMinutes(b)
	}
	if err != nil {
		return Hours{}, false, err
	}
	if q.Start == q.End {
		return Hours{}, false, fmt.Errorf("quiet hours must not start and end at the same time")
	}
	return q, true, nil
}

func clockMinutes(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf(`%q is not a time of day like "07:30"`, s)
	}
	return hh*60 + mm, nil
}

// Contains reports whether t falls in the quiet span, read on the wall clock of loc. Wall-clock
// reading is what makes daylight-saving changes come out right: 22:00 stays 22:00 for the person.
func (q Hours) Contains(t time.Time, loc *time.Location) bool {
	lt := t.In(loc)
	m := lt.Hour()*60 + lt.Minute()
	if q.Start < q.End {
		return m >= q.Start && m < q.End
	}
	return m >= q.Start || m < q.End
}

// Location resolves a person's time zone, falling back to UTC for an empty or unknown name so a bad
// setting never stops a ladder.
func Location(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}
