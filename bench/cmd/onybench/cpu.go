package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuUse is the CPU time (user + system) spent so far by the parties of a run: the ony servers, the
// PostgreSQL server (every backend, living or exited), and the harness with its children (pgbench).
// A difference of two readings says what a window of load cost each of them.
type cpuUse struct {
	ony, postgres, harness time.Duration
	at                     time.Time // when it was read
}

// sub is what was spent between reading b and reading a, and how long that was.
func (a cpuUse) sub(b cpuUse) (cpuUse, time.Duration) {
	return cpuUse{ony: a.ony - b.ony, postgres: a.postgres - b.postgres, harness: a.harness - b.harness}, a.at.Sub(b.at)
}

// clockTick is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on every Linux build Go supports.
const clockTick = 10 * time.Millisecond

// procStat is what readCPU needs of /proc/<pid>/stat.
type procStat struct {
	comm       string
	ppid       int
	self, kids time.Duration // utime+stime; cutime+cstime (children waited for)
}

func readProcStat(path string) (procStat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads one /proc/<pid>/stat line. The command name is in parentheses and may hold
// spaces and parentheses itself, so the fields are counted from its last ')'.
func parseProcStat(s string) (procStat, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("stat %q: no command name", s)
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat %q: %d fields after the name", s, len(f))
	}
	var n [5]int64
	for i, idx := range []int{1, 11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("stat field %d: %w", idx+3, err)
		}
		n[i] = v
	}
	return procStat{comm: s[open+1 : end], ppid: int(n[0]),
		self: time.Duration(n[1]+n[2]) * clockTick, kids: time.Duration(n[3]+n[4]) * clockTick}, nil
}

// readCPU sums the CPU time of the given ony servers, of PostgreSQL and of this harness. PostgreSQL's
// backends come and go (pgbench's connections end with it), so its total is every live postgres
// process plus what the postmaster has reaped; the harness's includes the children it waited for.
func readCPU(servers []*server) (cpuUse, error) {
	u := cpuUse{at: time.Now()}
	self, err := readProcStat("/proc/self/stat")
	if err != nil {
		return u, err
	}
	u.harness = self.self + self.kids
	ony := map[int]bool{}
	for _, s := range servers {
		ony[s.cmd.Process.Pid] = true
	}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	pgs := map[int]procStat{}
	for _, p := range paths {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		st, err := readProcStat(p)
		if err != nil {
			continue // it exited between the glob and the read
		}
		switch {
		case ony[pid]:
			u.ony += st.self
		case st.comm == "postgres":
			pgs[pid] = st
		}
	}
	for _, st := range pgs {
		u.postgres += st.self
		if _, child := pgs[st.ppid]; !child {
			u.postgres += st.kids // the postmaster: its reaped backends
		}
	}
	return u, nil
}

// settle waits, for at most limit, until the servers' CPU falls below 5 % of a core over 250 ms: the
// jobs a load left behind have run, and a reading taken then counts them with the load. It reads only
// the servers' own stat files: the harness's CPU is being measured too.
func settle(ctx context.Context, servers []*server, limit time.Duration) {
	const step = 250 * time.Millisecond
	used := func() (time.Duration, error) {
		var t time.Duration
		for _, s := range servers {
			st, err := readProcStat(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
			if err != nil {
				return 0, err
			}
			t += st.self
		}
		return t, nil
	}
	prev, err := used()
	if err != nil {
		return
	}
	for end := time.Now().Add(limit); time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return
		case <-time.After(step):
		}
		cur, err := used()
		if err != nil || cur-prev < step/20 {
			return
		}
		prev = cur
	}
}

// cpuParties are the parties whose CPU a server-side window is read for: PostgreSQL only when it
// serves the instance.
func cpuParties(dialect string) []string {
	if dialect == "postgres" {
		return []string{"ony", "postgres", "harness"}
	}
	return []string{"ony", "harness"}
}
