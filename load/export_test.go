package load

// withIteration replaces each iteration's request (tests of the executors).
func withIteration(f func(v *vu) bool) Option { return func(e *Engine) { e.iteration = f } }
