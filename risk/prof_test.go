package risk

import (
	"fmt"
	"testing"
	"time"
)

func TestProfRules(t *testing.T) {
	e := Default()
	for _, name := range []string{"script", "dense"} {
		pl := repeatTo(typicalScript, 1<<20)
		if name == "dense" { pl = repeatTo("rm push delete update drop truncate alter curl sudo su chmod /etc /dev/ helm replicas destroy ", 1<<20) }
		p := prepare(pl)
		var total time.Duration
		for i := range e.rules {
			r := &e.rules[i]
			if r.re == nil { continue }
			st := time.Now()
			for range 3 { r.matchPayload(p, true) }
			d := time.Since(st)/3
			total += d
			fmt.Printf("%-7s %-28s %12v\n", name, r.id, d)
		}
		fmt.Println("total", total)
	}
}
