package risk

import (
	"fmt"
	"testing"
	"time"
)

func TestProfRules(t *testing.T) {
	payloads := map[string]string{
		"script": repeatTo(typicalScript, 1<<20),
		"dense":  repeatTo("rm push delete update drop truncate alter curl sudo su chmod /etc /dev/ helm replicas destroy ", 1<<20),
	}
	e := Default()
	for name, pl := range payloads {
		p := prepare(pl)
		for i := range e.rules {
			r := &e.rules[i]
			if r.re == nil { continue }
			st := time.Now()
			r.matchPayload(p, true)
			fmt.Printf("%-8s %-28s %v progsize=%d\n", name, r.id, time.Since(st), len(r.re.String()))
		}
	}
}
