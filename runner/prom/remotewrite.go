package prom

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// Point is one series' value at an instant for a remote write: a float
// (Hist nil) or a native histogram.
type Point struct {
	Labels map[string]string // __name__ included
	T      int64             // Unix milliseconds
	V      float64
	Hist   *Hist
}

// Push sends points to a Prometheus remote-write endpoint (remote write
// 1.0: a snappy-compressed protobuf WriteRequest).
func Push(ctx context.Context, hc *http.Client, url string, pts []Point) error {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	body := snappy.Encode(nil, encodeWrite(pts))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("remote write to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("remote write to %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		return &PushError{Status: resp.StatusCode, err: fmt.Errorf("remote write to %s: %s: %s (is the server started with --web.enable-remote-write-receiver and --enable-feature=native-histograms?)", url, resp.Status, bytes.TrimSpace(msg))}
	}
	return nil
}

// PushError is a remote write the server answered with an error status.
type PushError struct {
	Status int
	err    error
}

func (e *PushError) Error() string { return e.err.Error() }

// AlreadyStored reports Prometheus refusing samples as older than, or at
// the time of, the ones its series hold.
func (e *PushError) AlreadyStored() bool {
	m := e.err.Error()
	return strings.Contains(m, "out of order") || strings.Contains(m, "duplicate sample")
}

// Permanent reports a refusal that sending the same points again cannot
// change (4xx but 429: out of order, bad labels), as remote write's own
// clients treat it.
func (e *PushError) Permanent() bool {
	return e.Status/100 == 4 && e.Status != http.StatusTooManyRequests
}

// encodeWrite encodes prometheus.WriteRequest (prompb remote.proto and
// types.proto field numbers).
func encodeWrite(pts []Point) []byte {
	var out []byte
	for _, p := range pts {
		var ts []byte
		names := make([]string, 0, len(p.Labels))
		for k := range p.Labels {
			names = append(names, k)
		}
		slices.Sort(names) // remote write wants labels sorted by name
		for _, k := range names {
			var l []byte
			l = protowire.AppendTag(l, 1, protowire.BytesType)
			l = protowire.AppendString(l, k)
			l = protowire.AppendTag(l, 2, protowire.BytesType)
			l = protowire.AppendString(l, p.Labels[k])
			ts = protowire.AppendTag(ts, 1, protowire.BytesType) // TimeSeries.labels
			ts = protowire.AppendBytes(ts, l)
		}
		if p.Hist == nil {
			var s []byte
			s = protowire.AppendTag(s, 1, protowire.Fixed64Type) // Sample.value
			s = protowire.AppendFixed64(s, math.Float64bits(p.V))
			s = protowire.AppendTag(s, 2, protowire.VarintType) // Sample.timestamp
			s = protowire.AppendVarint(s, uint64(p.T))
			ts = protowire.AppendTag(ts, 2, protowire.BytesType) // TimeSeries.samples
			ts = protowire.AppendBytes(ts, s)
		} else {
			ts = protowire.AppendTag(ts, 4, protowire.BytesType) // TimeSeries.histograms
			ts = protowire.AppendBytes(ts, encodeHist(p.Hist, p.T))
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType) // WriteRequest.timeseries
		out = protowire.AppendBytes(out, ts)
	}
	return out
}

// encodeHist encodes prometheus.Histogram with integer counts.
func encodeHist(h *Hist, t int64) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType) // count_int
	b = protowire.AppendVarint(b, uint64(h.Count))
	b = protowire.AppendTag(b, 3, protowire.Fixed64Type) // sum
	b = protowire.AppendFixed64(b, math.Float64bits(h.Sum))
	b = protowire.AppendTag(b, 4, protowire.VarintType) // schema (sint32)
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(int64(h.Schema)))
	b = protowire.AppendTag(b, 5, protowire.Fixed64Type) // zero_threshold
	b = protowire.AppendFixed64(b, math.Float64bits(h.ZeroThreshold))
	b = protowire.AppendTag(b, 6, protowire.VarintType) // zero_count_int
	b = protowire.AppendVarint(b, uint64(h.ZeroCount))
	idx := make([]int32, 0, len(h.Buckets))
	for i, v := range h.Buckets {
		if v > 0 {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	// Spans of consecutive buckets; deltas between neighbouring counts.
	var deltas []byte
	var prevCount int64
	for k := 0; k < len(idx); {
		j := k
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		off := idx[k]
		if k > 0 {
			off = idx[k] - idx[k-1] - 1
		}
		var sp []byte
		sp = protowire.AppendTag(sp, 1, protowire.VarintType) // BucketSpan.offset (sint32)
		sp = protowire.AppendVarint(sp, protowire.EncodeZigZag(int64(off)))
		sp = protowire.AppendTag(sp, 2, protowire.VarintType) // BucketSpan.length
		sp = protowire.AppendVarint(sp, uint64(j-k+1))
		b = protowire.AppendTag(b, 11, protowire.BytesType) // positive_spans
		b = protowire.AppendBytes(b, sp)
		for ; k <= j; k++ {
			c := int64(h.Buckets[idx[k]])
			deltas = protowire.AppendVarint(deltas, protowire.EncodeZigZag(c-prevCount))
			prevCount = c
		}
	}
	if len(deltas) > 0 {
		b = protowire.AppendTag(b, 12, protowire.BytesType) // positive_deltas (packed sint64)
		b = protowire.AppendBytes(b, deltas)
	}
	b = protowire.AppendTag(b, 15, protowire.VarintType) // timestamp
	b = protowire.AppendVarint(b, uint64(t))
	return b
}

// Observe adds one observation (v >= 0) to h.
func (h *Hist) Observe(v float64) {
	h.Count++
	h.Sum += v
	if v <= h.ZeroThreshold || math.IsNaN(v) {
		h.ZeroCount++
		return
	}
	i := int32(math.Ceil(math.Log2(v) * math.Ldexp(1, int(h.Schema))))
	// Guard against rounding at a bound: v must be in (lo, hi].
	if lo, hi := h.Bounds(i); v <= lo {
		i--
	} else if v > hi {
		i++
	}
	h.Buckets[i]++
}
