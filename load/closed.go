package load

import (
	"context"
	"sync"
	"time"
)

// fixedVUs runs n VUs from now on, each looping iterations while its own
// more() allows and the regular end has not passed; it returns when every
// VU has stopped (at the latest when hard ends, interrupting them).
func (e *Engine) fixedVUs(hard context.Context, n int64, regular time.Time, more func() func() bool) {
	var wg sync.WaitGroup
	e.addVUs(n)
	defer e.addVUs(-n)
	for i := range n {
		v := e.newVU(hard, int(i))
		again := more()
		wg.Go(func() {
			defer v.close()
			for hard.Err() == nil && time.Now().Before(regular) && again() {
				if !e.run(v) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// always is the more() of the executors limited by time only.
func always() func() bool { return func() bool { return true } }
