// Package k6out is faultline's own k6 output. It runs inside the k6 child
// process (`faultline k6 run --out faultline=ADDR ...`), folds every request
// into a per-slot aggregate keyed by the request's START time, and streams
// the aggregates, as deltas, to the runner listening on ADDR (loopback). No
// per-request data leaves the process and nothing is written to disk.
//
// If the runner goes away, the output stops the test run: a load nobody
// judges is load nobody asked for.
package k6out

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"go.k6.io/k6/metrics"
	"go.k6.io/k6/output"

	"faultline.dev/faultline/runner/aggregate"
)

// Name is the output's name on the k6 command line: --out faultline=ADDR.
const Name = "faultline"

// FlushInterval is how often aggregates are sent to the runner.
const FlushInterval = 250 * time.Millisecond

// Register registers the output with k6; call it once, before k6 runs.
func Register() { output.RegisterExtension(Name, New) }

// Message is one line on the wire: the slots that changed since the last
// message.
type Message struct {
	Slots []aggregate.Wire `json:"slots"`
}

// Output is the k6 output.
type Output struct {
	output.SampleBuffer
	addr   string
	logger logrus.FieldLogger

	mu      sync.Mutex
	conn    net.Conn
	w       *bufio.Writer
	pending map[aggregate.Key]*aggregate.Agg
	flusher *output.PeriodicFlusher
	stop    func(error)
	failed  bool
}

var _ output.WithTestRunStop = (*Output)(nil)

// New is the output's constructor: the config argument is the runner's
// loopback address.
func New(p output.Params) (output.Output, error) {
	addr := p.ConfigArgument
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--out %s=%q: want HOST:PORT of the faultline runner: %w", Name, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--out %s=%s: the runner must be on loopback", Name, addr)
	}
	return &Output{addr: addr, logger: p.Logger, pending: map[aggregate.Key]*aggregate.Agg{}}, nil
}

// Description is shown by k6 at start.
func (o *Output) Description() string { return Name + " (" + o.addr + ")" }

// SetTestRunStopCallback lets the output stop the run when the runner is gone.
func (o *Output) SetTestRunStopCallback(f func(error)) { o.stop = f }

// Start connects to the runner.
func (o *Output) Start() error {
	conn, err := net.DialTimeout("tcp", o.addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("connecting to the faultline runner at %s: %w", o.addr, err)
	}
	o.conn, o.w = conn, bufio.NewWriter(conn)
	o.flusher, err = output.NewPeriodicFlusher(FlushInterval, o.flush)
	return err
}

// Stop sends what is left and closes the connection.
func (o *Output) Stop() error {
	if o.flusher != nil {
		o.flusher.Stop()
	}
	o.flush()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn != nil {
		return o.conn.Close()
	}
	return nil
}

func (o *Output) slot(start, end time.Time) *aggregate.Agg {
	k := aggregate.Key{Start: aggregate.SlotOf(start.UnixMilli())}
	if e := aggregate.SlotOf(end.UnixMilli()); e != k.Start {
		k.End = e
	}
	a := o.pending[k]
	if a == nil {
		a = aggregate.New()
		o.pending[k] = a
	}
	return a
}

// fold adds buffered samples to the pending slots.
func (o *Output) fold(containers []metrics.SampleContainer) {
	for _, c := range containers {
		var dur *metrics.Sample
		failed := false
		for _, s := range c.GetSamples() {
			switch s.Metric.Name {
			case metrics.HTTPReqDurationName:
				s := s
				dur = &s
			case metrics.HTTPReqFailedName:
				failed = s.Value != 0
			case metrics.ChecksName:
				o.slot(s.Time, s.Time).AddCheck(s.Value != 0)
			}
		}
		if dur != nil {
			start := dur.Time.Add(-time.Duration(dur.Value * float64(time.Millisecond)))
			o.slot(start, dur.Time).AddRequest(dur.Value, failed)
		}
	}
}

func (o *Output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fold(o.GetBufferedSamples())
	if len(o.pending) == 0 || o.failed || o.w == nil {
		return
	}
	msg := Message{Slots: make([]aggregate.Wire, 0, len(o.pending))}
	for k, a := range o.pending {
		msg.Slots = append(msg.Slots, a.ToWireKey(k))
	}
	clear(o.pending)
	b, err := json.Marshal(msg)
	if err == nil {
		_ = o.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err = o.w.Write(append(b, '\n')); err == nil {
			err = o.w.Flush()
		}
	}
	if err != nil {
		o.failed = true
		o.logger.WithError(err).Error("the faultline runner is gone; stopping the test")
		if o.stop != nil {
			o.stop(fmt.Errorf("faultline runner unreachable: %w", err))
		}
	}
}
