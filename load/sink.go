package load

// Sink receives every sample as its request ends. Add is called
// concurrently from every VU; vu (0, 1, ...) is the VU's number, so an
// implementation can keep one accumulator per VU or per shard of VUs and
// avoid contention. Add must not keep s past the call.
type Sink interface {
	Add(vu int, s *Sample)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(vu int, s *Sample)

// Add calls f.
func (f SinkFunc) Add(vu int, s *Sample) { f(vu, s) }

type discard struct{}

func (discard) Add(int, *Sample) {}
