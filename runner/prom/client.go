// Package prom reads a run's numbers back from Prometheus over the run's
// ACTUAL windows, and writes the load engine's samples there.
//
// Reading (Reader): the raw samples of each series are fetched once for
// the whole run (a range selector, never rate() or increase(), which
// extrapolate) and cut in Go at the window bounds: a cumulative series
// contributes, to a window [a, b), its last value before b minus its last
// value before a (0 when it did not exist yet); a decrease is a restart
// (a new runner process) and counts from 0. Series are summed across
// runners and pods, native histograms merged bucket by bucket (exact at a
// common schema). Gauges (goroutines, heap) are judged per pod and the
// worst pod is the aggregate.
//
// The load series are the ones k6's experimental-prometheus-rw output
// writes with trends as native histograms (names below, k6 tags as labels);
// faultline's engine writes the same series (EngineWriter, `faultline run
// --prometheus-write`) so local and cluster runs share one metric contract,
// and faultline_fault_active for the fault windows.
package prom

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client queries one Prometheus server's HTTP API.
type Client struct {
	// URL is the server's base URL, e.g. http://prometheus:9090.
	URL  string
	HTTP *http.Client
}

// Series is one series' raw samples, oldest first: floats or native
// histograms.
type Series struct {
	Labels map[string]string
	Floats []Float
	Hists  []HistAt
}

// Float is one float sample (T in Unix milliseconds).
type Float struct {
	T int64
	V float64
}

// HistAt is one native histogram sample.
type HistAt struct {
	T int64
	H *Hist
}

// Raw returns every sample of the series selector matches in (from, to].
func (c *Client) Raw(ctx context.Context, selector string, from, to time.Time) ([]Series, error) {
	rng := to.Sub(from).Milliseconds()
	if rng < 1 {
		rng = 1
	}
	q := fmt.Sprintf("%s[%dms]", selector, rng)
	var res struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric     map[string]string `json:"metric"`
			Values     [][2]any          `json:"values"`
			Histograms []json.RawMessage `json:"histograms"`
		} `json:"result"`
	}
	if err := c.get(ctx, "/api/v1/query", url.Values{"query": {q}, "time": {stamp(to)}}, &res); err != nil {
		return nil, err
	}
	if res.ResultType != "matrix" {
		return nil, fmt.Errorf("prometheus %s: query %s: a %s, not a matrix", c.URL, q, res.ResultType)
	}
	out := make([]Series, 0, len(res.Result))
	for _, r := range res.Result {
		s := Series{Labels: r.Metric}
		for _, v := range r.Values {
			t, err := msOf(v[0])
			if err != nil {
				return nil, fmt.Errorf("prometheus %s: query %s: %w", c.URL, q, err)
			}
			str, _ := v[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return nil, fmt.Errorf("prometheus %s: query %s: value %q: %w", c.URL, q, str, err)
			}
			s.Floats = append(s.Floats, Float{t, f})
		}
		for _, raw := range r.Histograms {
			h, t, err := parseHist(raw)
			if err != nil {
				return nil, fmt.Errorf("prometheus %s: query %s: %w", c.URL, q, err)
			}
			s.Hists = append(s.Hists, HistAt{t, h})
		}
		out = append(out, s)
	}
	return out, nil
}

// Ready checks that the server answers queries.
func (c *Client) Ready(ctx context.Context) error {
	var res struct {
		ResultType string `json:"resultType"`
	}
	return c.get(ctx, "/api/v1/query", url.Values{"query": {"1"}}, &res)
}

func (c *Client) get(ctx context.Context, path string, v url.Values, into any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	u := strings.TrimSuffix(c.URL, "/") + path + "?" + v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("prometheus %s: %w (check target.prometheus.url or --prometheus)", c.URL, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus %s unreachable: %w (check target.prometheus.url or --prometheus)", c.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("prometheus %s: reading the answer: %w", c.URL, err)
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("prometheus %s: %s: not the Prometheus API (%s): %.200s", c.URL, path, resp.Status, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("prometheus %s: %s: %s: %s", c.URL, v.Get("query"), env.ErrorType, env.Error)
	}
	return json.Unmarshal(env.Data, into)
}

func stamp(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) }

func msOf(v any) (int64, error) {
	f, ok := v.(float64)
	if !ok {
		return 0, fmt.Errorf("timestamp %v is not a number", v)
	}
	return int64(math.Round(f * 1000)), nil
}

// parseHist reads one [time, histogram] pair of the query API.
func parseHist(raw json.RawMessage) (*Hist, int64, error) {
	var pair [2]json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil {
		return nil, 0, fmt.Errorf("histogram sample: %w", err)
	}
	var ts float64
	if err := json.Unmarshal(pair[0], &ts); err != nil {
		return nil, 0, fmt.Errorf("histogram timestamp: %w", err)
	}
	var js struct {
		Count   string  `json:"count"`
		Sum     string  `json:"sum"`
		Buckets [][]any `json:"buckets"`
	}
	if err := json.Unmarshal(pair[1], &js); err != nil {
		return nil, 0, fmt.Errorf("histogram: %w", err)
	}
	h := &Hist{Buckets: map[int32]float64{}, Schema: math.MaxInt8}
	var err error
	if h.Count, err = strconv.ParseFloat(js.Count, 64); err != nil {
		return nil, 0, fmt.Errorf("histogram count %q: %w", js.Count, err)
	}
	if h.Sum, err = strconv.ParseFloat(js.Sum, 64); err != nil {
		return nil, 0, fmt.Errorf("histogram sum %q: %w", js.Sum, err)
	}
	type pos struct{ lo, hi, n float64 }
	var ps []pos
	for _, b := range js.Buckets {
		if len(b) != 4 {
			return nil, 0, fmt.Errorf("histogram bucket %v: want [rule, lower, upper, count]", b)
		}
		var f [3]float64
		for i := range 3 {
			s, _ := b[i+1].(string)
			if f[i], err = strconv.ParseFloat(s, 64); err != nil {
				return nil, 0, fmt.Errorf("histogram bucket %v: %w", b, err)
			}
		}
		if f[0] <= 0 { // the zero bucket, or negative observations
			h.ZeroCount += f[2]
			h.ZeroThreshold = max(h.ZeroThreshold, f[1])
			continue
		}
		ps = append(ps, pos{f[0], f[1], f[2]})
		s, err := schemaOf(f[0], f[1])
		if err != nil {
			return nil, 0, err
		}
		h.Schema = min(h.Schema, s)
	}
	if h.Schema == math.MaxInt8 {
		h.Schema = 0
	}
	for _, p := range ps {
		// A bucket of a finer schema than the rest (cannot happen within
		// one histogram) would be folded into its coarse bucket.
		s, _ := schemaOf(p.lo, p.hi)
		i := indexOf(s, p.hi)
		if d := uint(s - h.Schema); d > 0 {
			i = (i + (1 << d) - 1) >> d
		}
		h.Buckets[i] += p.n
	}
	return h, int64(math.Round(ts * 1000)), nil
}
