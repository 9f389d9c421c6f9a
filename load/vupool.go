package load

import (
	"context"
	"sync"
)

// vuPool holds the VUs of an arrival-rate executor: made before the start
// up to preAllocatedVUs, more on demand up to maxVUs.
type vuPool struct {
	e    *Engine
	ctx  context.Context
	free chan *vu
	max  int64

	mu   sync.Mutex
	made []*vu
}

func newVUPool(ctx context.Context, e *Engine, pre, maxVUs int64) *vuPool {
	p := &vuPool{e: e, ctx: ctx, free: make(chan *vu, maxVUs), max: maxVUs}
	for range pre {
		p.free <- p.make()
	}
	return p
}

func (p *vuPool) make() *vu {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.e.newVU(p.ctx, len(p.made))
	p.made = append(p.made, v)
	p.e.addVUs(1)
	return v
}

// get returns a free VU, a new one while fewer than max exist, or nil: the
// iteration is dropped.
func (p *vuPool) get() *vu {
	select {
	case v := <-p.free:
		return v
	default:
	}
	p.mu.Lock()
	full := int64(len(p.made)) >= p.max
	p.mu.Unlock()
	if full {
		return nil
	}
	return p.make()
}

// put returns a VU after its iteration.
func (p *vuPool) put(v *vu) { p.free <- v }

// close closes every VU.
func (p *vuPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.made {
		v.close()
	}
	p.e.addVUs(-int64(len(p.made)))
	p.made = nil
}

// replace swaps an interrupted VU for a new one with the same id.
func (p *vuPool) replace(old *vu) {
	old.close()
	if p.ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	v := p.e.newVU(p.ctx, old.id)
	for i, m := range p.made {
		if m == old {
			p.made[i] = v
		}
	}
	p.mu.Unlock()
	p.free <- v
}
