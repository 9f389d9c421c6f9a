package inject

// httpFault header matching, replace of path, method and queries, and
// patch (headers, query pairs, JSON merge patch of the body), on the
// in-process path.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"faultline.dev/faultline/schema"
)

// echoTarget answers /json with a JSON document (Content-Type
// application/json, X-Kind: doc) and anything else with what it received:
// "METHOD PATH?QUERY|X-Debug headers|body".
func echoTarget(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Kind", "doc")
		fmt.Fprint(w, `{"a":1,"b":{"c":2,"d":3}}`)
	})
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "plain") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s?%s|%v|%s", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Values("X-Debug"), b)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestHTTPMatchReplacePatch(t *testing.T) {
	target := echoTarget(t)
	type probe struct {
		method, path, body string
		header             [2]string // sent with the request
		want               string    // the body the client gets
		wantJSON           any       // or, the JSON document it gets
	}
	for _, tc := range []struct {
		name   string
		fault  schema.HTTPFault
		probes []probe
	}{
		{"request headers select", schema.HTTPFault{Target: "request", RequestHeaders: map[string]string{"X-Canary": "true"}, Replace: &schema.HTTPReplace{Method: "PUT"}}, []probe{
			{method: "GET", path: "/a", header: [2]string{"X-Canary", "true"}, want: "PUT /a?|[]|"},
			{method: "GET", path: "/a", header: [2]string{"X-Canary", "false"}, want: "GET /a?|[]|"},
			{method: "GET", path: "/a", want: "GET /a?|[]|"},
		}},
		{"replace path, method, queries", schema.HTTPFault{Target: "request", Path: "/old*", Replace: &schema.HTTPReplace{
			Path: "/new", Method: "DELETE", Queries: map[string]string{"debug": "1", "keep": "x"}}}, []probe{
			{method: "GET", path: "/old/1?keep=y&other=2", want: "DELETE /new?debug=1&keep=x&other=2|[]|"},
			{method: "GET", path: "/other?keep=y", want: "GET /other?keep=y|[]|"},
		}},
		{"patch request", schema.HTTPFault{Target: "request", Patch: &schema.HTTPPatch{
			Body:    &schema.HTTPPatchBody{Type: "JSON", Value: `{"b":{"c":null,"e":5},"z":true}`},
			Queries: [][]string{{"flag", "on"}, {"flag", "off"}},
			Headers: [][]string{{"X-Debug", "1"}, {"X-Debug", "2"}}}}, []probe{
			{method: "POST", path: "/p?flag=was", body: `{"a":1,"b":{"c":2,"d":3}}`, want: `POST /p?flag=was&flag=on&flag=off|[1 2]|{"a":1,"b":{"d":3,"e":5},"z":true}`},
			// A body that is not JSON passes unchanged.
			{method: "POST", path: "/p", body: "not json", want: "POST /p?flag=on&flag=off|[1 2]|not json"},
		}},
		{"response headers select, patch response", schema.HTTPFault{Target: "response", ResponseHeaders: map[string]string{"X-Kind": "doc"},
			Patch: &schema.HTTPPatch{Body: &schema.HTTPPatchBody{Type: "JSON", Value: `{"a":null,"degraded":true}`}}}, []probe{
			{method: "GET", path: "/json", wantJSON: map[string]any{"b": map[string]any{"c": 2.0, "d": 3.0}, "degraded": true}},
			{method: "GET", path: "/text", want: "plain"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFaults()
			c, _ := faultClient(t, f, true)
			mustSet(t, f, "h", schema.Fault{HTTPFault: &tc.fault})
			check := func(cleared bool) {
				for _, pr := range tc.probes {
					req, err := http.NewRequest(pr.method, target.URL+pr.path, nil)
					if pr.body != "" {
						req, err = http.NewRequest(pr.method, target.URL+pr.path, strings.NewReader(pr.body))
					}
					if err != nil {
						t.Fatal(err)
					}
					if pr.header[0] != "" {
						req.Header.Set(pr.header[0], pr.header[1])
					}
					resp, err := c.Do(req)
					if err != nil {
						t.Fatalf("%s %s: %v", pr.method, pr.path, err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if cleared {
						if want := clean(pr.method, pr.path, pr.body); string(b) != want {
							t.Errorf("after Clear %s %s: got %q, want %q", pr.method, pr.path, b, want)
						}
						continue
					}
					if pr.wantJSON != nil {
						var got any
						if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, pr.wantJSON) {
							t.Errorf("%s %s: got %s (%v), want %v", pr.method, pr.path, b, err, pr.wantJSON)
						}
						if resp.ContentLength != int64(len(b)) {
							t.Errorf("%s %s: Content-Length %d for a %d-byte body", pr.method, pr.path, resp.ContentLength, len(b))
						}
						continue
					}
					if string(b) != pr.want {
						t.Errorf("%s %s: got %q, want %q", pr.method, pr.path, b, pr.want)
					}
				}
			}
			check(false)
			f.Clear("h")
			check(true)
		})
	}
}

// clean is what echoTarget answers to a request no fault touched.
func clean(method, path, body string) string {
	switch path {
	case "/json":
		return `{"a":1,"b":{"c":2,"d":3}}`
	case "/text":
		return "plain"
	}
	if !strings.Contains(path, "?") {
		path += "?"
	}
	return method + " " + path + "|[]|" + body
}

func TestHTTPPatchRefusals(t *testing.T) {
	for _, h := range []schema.HTTPFault{
		{Target: "request", Patch: &schema.HTTPPatch{Body: &schema.HTTPPatchBody{Type: "JSON", Value: "{not json"}}},
		{Target: "request", Patch: &schema.HTTPPatch{Headers: [][]string{{"only-name"}}}},
		{Target: "request", Abort: true, TLS: &schema.HTTPTLS{SecretName: "s", CertName: "c", KeyName: "k"}},
	} {
		if err := NewFaults().Set("h", schema.Fault{HTTPFault: &h}); err == nil {
			t.Errorf("Set accepted %+v", h)
		}
	}
}
