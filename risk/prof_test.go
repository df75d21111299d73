package risk

import (
	"fmt"
	"testing"
	"time"
)

func TestProfRules(t *testing.T) {
	dense := repeatTo("rm push delete update drop truncate alter curl sudo su chmod /etc /dev/ helm replicas destroy ", 1<<20)
	e := Default()
	p := prepare(dense)
	for i := range e.rules {
		r := &e.rules[i]
		if r.re == nil { continue }
		st := time.Now()
		r.re.MatchString(dense)
		d1 := time.Since(st)
		st = time.Now()
		r.matchPayload(p, true)
		d2 := time.Since(st)
		st = time.Now()
		r.matchSpan(p.text)
		d3 := time.Since(st)
		fmt.Printf("%-28s %12v %12v %12v\n", r.id, d1, d2, d3)
	}
}
