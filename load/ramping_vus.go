package load

import (
	"context"
	"sync"
	"time"

	"faultline.dev/faultline/compiler/k6opts"
)

// RampingVUs is k6's ramping-vus: the VU count starts at StartVUs and
// follows each stage linearly to its target (see Steps); VUs removed by a
// ramp-down finish their iteration within GracefulRampDown.
type RampingVUs struct {
	base
	StartVUs         int64
	Stages           []k6opts.Stage
	GracefulRampDown time.Duration
}

// Validate checks the parameters as k6 does.
func (c *RampingVUs) Validate() error {
	if c.StartVUs < 0 {
		return invalid("startVUs cannot be negative")
	}
	if c.GracefulRampDown < 0 {
		return invalid("gracefulRampDown cannot be negative")
	}
	if err := validateStages(c.Stages); err != nil {
		return err
	}
	if c.StartVUs == 0 && maxTarget(c.Stages) == 0 {
		return invalid("startVUs and every stage's target are 0: no VU would ever run")
	}
	return nil
}

func maxTarget(stages []k6opts.Stage) int64 {
	var m int64
	for _, s := range stages {
		m = max(m, s.Target)
	}
	return m
}

// Steps is the plan of the VU count: a step each time it changes. During
// a stage from a to b over d the count is a + trunc((b-a)·t/d): it moves by
// one at t = d·i/|b-a|, i = 1..|b-a|, and reaches b at the stage's end; a
// stage of zero duration jumps at once. The last step is 0 VUs at the end.
func (c *RampingVUs) Steps() []Step {
	cur := c.StartVUs
	t := c.startTime
	steps := []Step{{At: t, VUs: cur}}
	for _, st := range c.Stages {
		d := st.Duration.Std()
		diff := st.Target - cur
		n := abs(diff)
		for i := int64(1); i <= n; i++ {
			at := t + time.Duration(int64(d)*i/n)
			steps = append(steps, Step{At: at, VUs: cur + sign(diff)*i})
		}
		cur = st.Target
		t += d
	}
	steps = append(steps, Step{At: t, VUs: 0})
	// Merge steps at the same instant: the last one wins.
	out := steps[:0]
	for _, s := range steps {
		if len(out) > 0 && out[len(out)-1].At == s.At {
			out[len(out)-1] = s
			continue
		}
		out = append(out, s)
	}
	return out
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func sign(n int64) int64 {
	if n < 0 {
		return -1
	}
	return 1
}

func (c *RampingVUs) length() time.Duration { return stagesLength(c.Stages) }

func (c *RampingVUs) run(ctx context.Context, e *Engine, start time.Time) {
	regular, hard, cancel, ok := c.window(ctx, start, c.length())
	defer cancel()
	if !ok {
		return
	}
	steps := c.Steps()
	var slots []*slot
	var wg sync.WaitGroup
	at := start.Add(c.startTime)
	for _, st := range steps[:len(steps)-1] {
		if !sleepUntil(hard, at.Add(st.At-c.startTime)) {
			break
		}
		for int64(len(slots)) < st.VUs {
			slots = append(slots, &slot{e: e, hard: hard, regular: regular, id: len(slots), wg: &wg})
		}
		for i, s := range slots {
			if int64(i) < st.VUs {
				s.activate()
			} else {
				s.deactivate(c.GracefulRampDown)
			}
		}
	}
	wg.Wait()
	for _, s := range slots {
		s.mu.Lock()
		if s.grace != nil {
			s.grace.Stop()
		}
		if s.v != nil {
			s.v.close()
		}
		s.mu.Unlock()
	}
}

// slot is one VU place of ramping-vus: wanted or not by the plan, and run
// by a goroutine while wanted.
type slot struct {
	e       *Engine
	hard    context.Context
	regular time.Time
	id      int
	wg      *sync.WaitGroup

	mu      sync.Mutex
	want    bool
	running bool
	v       *vu
	grace   *time.Timer
}

func (s *slot) activate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.want {
		return
	}
	s.want = true
	s.e.addVUs(1)
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	if !s.running {
		s.running = true
		if s.v == nil || s.v.ctx.Err() != nil {
			s.v = s.e.newVU(s.hard, s.id)
		}
		s.wg.Go(s.loop)
	}
}

// deactivate lets the VU finish its iteration within grace, then
// interrupts it.
func (s *slot) deactivate(grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.want {
		return
	}
	s.want = false
	s.e.addVUs(-1)
	if s.running {
		v := s.v
		s.grace = time.AfterFunc(grace, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.want && s.v == v {
				v.interrupt()
			}
		})
	}
}

// loop runs iterations while the slot is wanted and the regular end has
// not passed. A VU a ramp-down interrupted is replaced when the slot is
// wanted again before the loop noticed.
func (s *slot) loop() {
	for {
		s.mu.Lock()
		if s.hard.Err() != nil || !time.Now().Before(s.regular) {
			s.running = false
			if s.want {
				s.want = false
				s.e.addVUs(-1)
			}
			s.mu.Unlock()
			return
		}
		if !s.want {
			s.running = false
			s.mu.Unlock()
			return
		}
		if s.v.ctx.Err() != nil {
			s.v.close()
			s.v = s.e.newVU(s.hard, s.id)
		}
		v := s.v
		s.mu.Unlock()
		s.e.run(v)
	}
}
