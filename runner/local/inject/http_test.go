package inject

// HTTP faults on the in-process path: Faults.Middleware wrapping the
// transport of a client that dials through Faults.Dial (faultClient).

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"faultline.dev/faultline/schema"
)

func TestHTTPFaults(t *testing.T) {
	target := newTarget(t)
	type probe struct {
		method, path, body string
		wantErr            error // the request fails with it
		wantCode           int
		wantBody           string
		wantHeader         [2]string
		minTook, maxTook   time.Duration
	}
	ok := func(method, path string) probe {
		return probe{method: method, path: path, wantCode: 200, wantBody: "ok", maxTook: 80 * time.Millisecond}
	}
	for _, tc := range []struct {
		name    string
		fault   schema.HTTPFault
		probes  []probe
		aborted int64 // requests and responses aborted by the probes
	}{
		{"request abort, path and method", schema.HTTPFault{Target: "request", Path: "/api/*", Method: "GET", Abort: true}, []probe{
			{method: "GET", path: "/api/v1/users", wantErr: ErrAborted},
			ok("POST", "/api/v1/users"),
			ok("GET", "/other"),
		}, 1},
		{"request delay", schema.HTTPFault{Target: "request", Path: "/slow", Delay: schema.Duration(150 * time.Millisecond)}, []probe{
			{method: "GET", path: "/slow", wantCode: 200, wantBody: "ok", minTook: 150 * time.Millisecond, maxTook: 300 * time.Millisecond},
			ok("GET", "/slower"),
		}, 0},
		{"request replace", schema.HTTPFault{Target: "request", Path: "/hdr", Replace: &schema.HTTPReplace{
			Headers: map[string]string{"X-Injected": "yes"}, Body: ptr("new")}}, []probe{
			{method: "POST", path: "/hdr", body: "old", wantCode: 200, wantBody: "yes|new"},
		}, 0},
		{"response replace", schema.HTTPFault{Target: "response", Path: "/api/*", Replace: &schema.HTTPReplace{
			Code: 503, Body: ptr("nope"), Headers: map[string]string{"X-Fault": "1"}}}, []probe{
			{method: "GET", path: "/api/x", wantCode: 503, wantBody: "nope", wantHeader: [2]string{"X-Fault", "1"}},
			ok("GET", "/apix"),
		}, 0},
		{"response abort", schema.HTTPFault{Target: "response", Method: "DELETE", Abort: true}, []probe{
			{method: "DELETE", path: "/x", wantErr: errAbortResponse},
			ok("GET", "/x"),
		}, 1},
		{"response delay", schema.HTTPFault{Target: "response", Path: "/x", Delay: schema.Duration(100 * time.Millisecond)}, []probe{
			{method: "GET", path: "/x", wantCode: 200, wantBody: "ok", minTook: 100 * time.Millisecond, maxTook: 250 * time.Millisecond},
			ok("GET", "/y"),
		}, 0},
		{"response code filter", schema.HTTPFault{Target: "response", Code: 404, Replace: &schema.HTTPReplace{Code: 500}}, []probe{
			{method: "GET", path: "/missing", wantCode: 500, wantBody: "404 page not found\n"},
			ok("GET", "/found"),
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFaults()
			c, _ := faultClient(t, f, true)
			mw := f.Middleware()
			latencies(t, c, target.URL, 2) // keep-alive connections exist before the fault
			if mw.Active() {
				t.Fatal("Middleware active with no fault")
			}
			mustSet(t, f, "h", schema.Fault{HTTPFault: &tc.fault})
			if !mw.Active() {
				t.Fatal("Middleware not active with an httpFault")
			}
			for _, pr := range tc.probes {
				r := do(c, pr.method, target.URL+pr.path, pr.body)
				what := pr.method + " " + pr.path
				if pr.wantErr != nil {
					if !errors.Is(r.err, pr.wantErr) {
						t.Errorf("%s: got %d %q (%v), want the error %q and no response", what, r.code, r.body, r.err, pr.wantErr)
					}
					continue
				}
				if r.err != nil {
					t.Errorf("%s: %v", what, r.err)
					continue
				}
				if r.code != pr.wantCode || r.body != pr.wantBody {
					t.Errorf("%s: got %d %q, want %d %q", what, r.code, r.body, pr.wantCode, pr.wantBody)
				}
				if h := pr.wantHeader; h[0] != "" && r.hdr.Get(h[0]) != h[1] {
					t.Errorf("%s: header %s = %q, want %q", what, h[0], r.hdr.Get(h[0]), h[1])
				}
				if r.took < pr.minTook || (pr.maxTook > 0 && r.took > pr.maxTook) {
					t.Errorf("%s: took %v, want [%v, %v]", what, r.took, pr.minTook, pr.maxTook)
				}
			}
			if got := f.Aborted(); got != tc.aborted {
				t.Errorf("Aborted() = %d, want %d", got, tc.aborted)
			}
			// After Clear every probe is clean and the middleware steps
			// aside.
			f.Clear("h")
			if mw.Active() {
				t.Error("Middleware still active after Clear")
			}
			for _, pr := range tc.probes {
				for range 2 {
					r := do(c, pr.method, target.URL+pr.path, pr.body)
					if r.err != nil || r.took > 80*time.Millisecond || r.hdr.Get("X-Fault") != "" || r.code == 503 || r.code == 500 {
						t.Errorf("after Clear %s %s: %+v", pr.method, pr.path, r)
					}
				}
			}
			if got := f.Aborted(); got != tc.aborted {
				t.Errorf("Aborted() after Clear = %d, want %d", got, tc.aborted)
			}
		})
	}
}

// TestHTTPFaultWithNetworkDelay: HTTP and network faults compose: a delay
// on responses still applies to a request an httpFault replaces the
// response of.
func TestHTTPFaultWithNetworkDelay(t *testing.T) {
	target := newTarget(t)
	f := NewFaults()
	c, _ := faultClient(t, f, true)
	mustSet(t, f, "h", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "response", Path: "/api", Replace: &schema.HTTPReplace{Code: 418}}})
	mustSet(t, f, "d", delayFault(30*time.Millisecond, 0, 0, ""))
	r := do(c, "GET", target.URL+"/api", "")
	if r.err != nil || r.code != 418 || r.took < 30*time.Millisecond {
		t.Fatalf("got %d in %v (%v), want 418 after ≥ 30ms", r.code, r.took, r.err)
	}
	if got := f.Active(); !slices.Equal(got, []string{"d", "h"}) {
		t.Errorf("Active() = %v", got)
	}
	f.ClearAll()
	if got := f.Active(); len(got) != 0 {
		t.Errorf("Active() after ClearAll = %v", got)
	}
	if r := do(c, "GET", target.URL+"/api", ""); r.err != nil || r.code != 200 || r.took > 20*time.Millisecond {
		t.Errorf("after ClearAll: got %d in %v (%v), want 200 at once", r.code, r.took, r.err)
	}
}

// TestMiddlewareLeavesTheRequest: a RoundTripper must not modify the
// caller's request; a replace works on a copy.
func TestMiddlewareLeavesTheRequest(t *testing.T) {
	target := newTarget(t)
	f := NewFaults()
	c, _ := faultClient(t, f, true)
	mustSet(t, f, "h", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "request", Replace: &schema.HTTPReplace{
		Headers: map[string]string{"X-Injected": "yes"}}}})
	req, err := http.NewRequest("GET", target.URL+"/hdr", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "yes|" {
		t.Errorf("the target got %q, want the header replaced", b)
	}
	if h := req.Header.Get("X-Injected"); h != "" {
		t.Errorf("the caller's request was modified: X-Injected %q", h)
	}
}
