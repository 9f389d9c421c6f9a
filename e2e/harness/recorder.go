package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Recorder is the control endpoint of the recording chaos-daemon (a test stand-in for Chaos
// Mesh's chaos-daemon: see e2e/chaosmesh/cmd/chaos-daemon-recorder).
type Recorder struct {
	base string
}

// Call is one gRPC call the recorder saw.
type Call struct {
	Seq     int             `json:"seq"`
	Time    time.Time       `json:"time"`
	Method  string          `json:"method"`
	Request json.RawMessage `json:"request"`
	Error   string          `json:"error,omitempty"`
	Delayed string          `json:"delayed,omitempty"`
}

// Rule delays or fails the calls it matches (see the recorder's Rule).
type Rule struct {
	Method string `json:"method"`
	Match  string `json:"match,omitempty"`
	Delay  string `json:"delay,omitempty"`
	Fail   string `json:"fail,omitempty"`
	Times  int    `json:"times,omitempty"`
}

var recorderClient = &http.Client{Timeout: 10 * time.Second}

// Calls returns every call so far, oldest first.
func (r *Recorder) Calls(ctx context.Context) ([]Call, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/calls", nil)
	if err != nil {
		return nil, err
	}
	resp, err := recorderClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("recorder /calls: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var calls []Call
	if err := json.NewDecoder(resp.Body).Decode(&calls); err != nil {
		return nil, fmt.Errorf("recorder /calls: %w", err)
	}
	return calls, nil
}

// Since returns the calls after seq.
func (r *Recorder) Since(ctx context.Context, seq int) ([]Call, error) {
	all, err := r.Calls(ctx)
	if err != nil {
		return nil, err
	}
	var out []Call
	for _, c := range all {
		if c.Seq > seq {
			out = append(out, c)
		}
	}
	return out, nil
}

// Last returns the sequence number of the latest call (0 for none).
func (r *Recorder) Last(ctx context.Context) (int, error) {
	all, err := r.Calls(ctx)
	if err != nil || len(all) == 0 {
		return 0, err
	}
	return all[len(all)-1].Seq, nil
}

// SetRules replaces the recorder's rules (nil clears them).
func (r *Recorder) SetRules(ctx context.Context, rules []Rule) error {
	if rules == nil {
		rules = []Rule{}
	}
	body, err := json.Marshal(rules)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.base+"/rules", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := recorderClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("recorder /rules: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
