package report

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestAnnotate: one POST /api/annotations per fault, with the ACTUAL window
// in ms, the tags and the Bearer token; a failing Grafana is an error the
// caller can print as a warning.
func TestAnnotate(t *testing.T) {
	res := fixture(t)
	var mu sync.Mutex
	var got []Annotation
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/annotations" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		var a Annotation
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, a)
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte(`{"id":1,"message":"Annotation added"}`))
	}))
	defer srv.Close()

	if err := Annotate(context.Background(), srv.Client(), srv.URL+"/", "s3cret", res); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d annotations, want 1", len(got))
	}
	f := res.Faults[0]
	a := got[0]
	if a.Time != f.Start.UnixMilli() || a.TimeEnd != f.End.UnixMilli() || a.TimeEnd-a.Time < 3990 || a.TimeEnd-a.Time > 4010 {
		t.Errorf("window %d-%d, want the actual %d-%d", a.Time, a.TimeEnd, f.Start.UnixMilli(), f.End.UnixMilli())
	}
	if strings.Join(a.Tags, ",") != "faultline,golden-demo,jitter" {
		t.Errorf("tags %v", a.Tags)
	}
	if !strings.Contains(a.Text, "jitter") || !strings.Contains(a.Text, "4.00–8.00 s") {
		t.Errorf("text %q", a.Text)
	}
	if auth[0] != "Bearer s3cret" {
		t.Errorf("Authorization %q", auth[0])
	}

	// Without a token, no Authorization header.
	got, auth = nil, nil
	if err := Annotate(context.Background(), srv.Client(), srv.URL, "", res); err != nil || auth[0] != "" {
		t.Errorf("no token: %v %q", err, auth)
	}

	// Grafana refusing is an error naming the fault and the status.
	deny := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"Unauthorized"}`, http.StatusUnauthorized)
	}))
	defer deny.Close()
	err := Annotate(context.Background(), deny.Client(), deny.URL, "bad", res)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "jitter") {
		t.Errorf("refused: %v", err)
	}
}
