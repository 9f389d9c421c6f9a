package prom

import "math"

// Window is a half-open span [From, To) in Unix milliseconds.
type Window struct{ From, To int64 }

// counterAt is a cumulative float series' total before t, restarts (a
// value lower than the one before) counted from 0.
func counterAt(s []Float, t int64) float64 {
	total, prev := 0.0, 0.0
	for _, p := range s {
		if p.T >= t {
			break
		}
		if p.V < prev { // restarted
			total += prev
		}
		prev = p.V
	}
	return total + prev
}

// Delta is what a cumulative float series gained in w.
func Delta(s []Float, w Window) float64 { return counterAt(s, w.To) - counterAt(s, w.From) }

// histAt is a cumulative histogram series' total before t (nil when none).
func histAt(s []HistAt, t int64) *Hist {
	var total, prev *Hist
	for _, p := range s {
		if p.T >= t {
			break
		}
		if prev != nil && p.H.Count < prev.Count { // restarted
			total = prev.Add(total)
		}
		prev = p.H
	}
	if prev == nil {
		return total
	}
	return prev.Add(total)
}

// HistDelta is what a cumulative histogram series gained in w (nil when
// nothing).
func HistDelta(s []HistAt, w Window) *Hist {
	end := histAt(s, w.To)
	if end == nil {
		return nil
	}
	return end.Sub(histAt(s, w.From))
}

// gaugeStats are a gauge's samples in w: mean and max, n samples.
func gaugeStats(s []Float, w Window) (mean, maxV float64, n int) {
	maxV = math.NaN()
	sum := 0.0
	for _, p := range s {
		if p.T < w.From || p.T >= w.To || math.IsNaN(p.V) {
			continue
		}
		sum += p.V
		if n == 0 || p.V > maxV {
			maxV = p.V
		}
		n++
	}
	if n == 0 {
		return math.NaN(), math.NaN(), 0
	}
	return sum / float64(n), maxV, n
}
