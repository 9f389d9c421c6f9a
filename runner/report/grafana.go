package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"faultline.dev/faultline/results"
)

// Annotation is the body of Grafana's POST /api/annotations.
type Annotation struct {
	Time    int64    `json:"time"`    // ms since the epoch
	TimeEnd int64    `json:"timeEnd"` // ms since the epoch
	Tags    []string `json:"tags"`
	Text    string   `json:"text"`
}

// Annotations returns one region annotation per fault, over its ACTUAL
// window, tagged faultline, the scenario and the fault. A fault that was
// never recovered ends at the end of the run.
func Annotations(res *results.Result) []Annotation {
	var out []Annotation
	for _, f := range res.Faults {
		if f.Start.IsZero() {
			continue
		}
		end := f.End
		if end.IsZero() {
			end = res.EndedAt
		}
		text := fmt.Sprintf("faultline %s %s: fault %s (%s), actual %.2f–%.2f s of the load (planned %s–%s), run %s, verdict %s",
			res.Scenario, res.Version, f.Fault, f.Kind, f.StartOffset, end.Sub(res.LoadStart).Seconds(), f.PlanStart, f.PlanEnd, res.RunID, res.Verdict)
		out = append(out, Annotation{Time: f.Start.UnixMilli(), TimeEnd: end.UnixMilli(), Tags: []string{"faultline", res.Scenario, f.Fault}, Text: text})
	}
	return out
}

// Annotate posts each fault's actual window to Grafana (baseURL, e.g.
// http://grafana:3000) as an annotation, with token as a Bearer token when
// set. It posts every annotation it can and returns the failures joined;
// callers treat them as warnings.
func Annotate(ctx context.Context, client *http.Client, baseURL, token string, res *results.Result) error {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	url := strings.TrimSuffix(baseURL, "/") + "/api/annotations"
	var errs []error
	for _, a := range Annotations(res) {
		body, err := json.Marshal(a)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("grafana annotation: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			errs = append(errs, fmt.Errorf("posting the annotation of fault %s to %s: %w", a.Tags[2], url, err))
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			errs = append(errs, fmt.Errorf("posting the annotation of fault %s to %s: %s: %s", a.Tags[2], url, resp.Status, strings.TrimSpace(string(msg))))
		}
	}
	return errors.Join(errs...)
}
