package k6opts_test

import (
	"errors"
	"strings"
	"testing"

	"go.k6.io/k6/metrics"

	"faultline.dev/faultline/compiler/k6opts"
)

func TestValidateValid(t *testing.T) {
	tests := []struct {
		name string
		json string
		opts []k6opts.Option
	}{
		{"empty", `{}`, nil},
		{"null", `null`, nil},
		{"constant-arrival-rate", `{"scenarios": {"load": {
			"executor": "constant-arrival-rate", "rate": 200, "timeUnit": "1s", "duration": "2m",
			"preAllocatedVUs": 50, "maxVUs": 200, "gracefulStop": "10s", "tags": {"phase": "steady"}}}}`, nil},
		{"ramping-arrival-rate", `{"scenarios": {"ramp": {
			"executor": "ramping-arrival-rate", "startRate": 10, "timeUnit": "1s",
			"preAllocatedVUs": 10, "maxVUs": 100,
			"stages": [{"target": 100, "duration": "30s"}, {"target": 100, "duration": "1m"}, {"target": 0, "duration": "10s"}]}}}`, nil},
		{"constant-vus", `{"scenarios": {"cv": {"executor": "constant-vus", "vus": 10, "duration": "30s"}}}`, nil},
		{"ramping-vus", `{"scenarios": {"rv": {"executor": "ramping-vus", "startVUs": 0,
			"stages": [{"target": 20, "duration": "10s"}, {"target": 0, "duration": "5s"}], "gracefulRampDown": "5s"}}}`, nil},
		{"per-vu-iterations", `{"scenarios": {"pvi": {"executor": "per-vu-iterations", "vus": 2, "iterations": 10, "maxDuration": "1m"}}}`, nil},
		{"shared-iterations", `{"scenarios": {"si": {"executor": "shared-iterations", "vus": 2, "iterations": 10}}}`, nil},
		{"several scenarios with startTime and exec", `{"scenarios": {
			"steady": {"executor": "constant-vus", "vus": 5, "duration": "1m", "exec": "steady"},
			"fault-window": {"executor": "constant-vus", "vus": 5, "duration": "1m", "startTime": "1m", "exec": "steady"}}}`,
			[]k6opts.Option{k6opts.WithExports("default", "steady")}},
		{"shortcuts vus+duration", `{"vus": 5, "duration": "10s"}`, nil},
		{"shortcuts stages", `{"stages": [{"target": 5, "duration": "10s"}]}`, nil},
		{"shortcuts iterations", `{"vus": 2, "iterations": 4}`, nil},
		{"tagged sub-metric thresholds", `{"scenarios": {"cv": {"executor": "constant-vus", "vus": 1, "duration": "1s"}},
			"thresholds": {
				"http_req_duration{phase:fault}": ["p(99)<300", {"threshold": "p(95)<200", "abortOnFail": true, "delayAbortEval": "10s"}],
				"http_reqs{phase:steady}": ["count>100", "rate>10"],
				"http_req_failed{phase:recovery}": ["rate<0.01"],
				"checks": ["rate>0.99"],
				"http_req_duration{expected_response:true}": ["avg<100", "med<80", "max<1000"]}}`, nil},
		{"custom metric", `{"thresholds": {"fault_errors": ["count<10"], "fault_latency{phase:fault}": ["p(90)<50"]}}`,
			[]k6opts.Option{k6opts.WithMetric("fault_errors", metrics.Counter), k6opts.WithMetric("fault_latency", metrics.Trend)}},
		{"other options", `{"noConnectionReuse": true, "userAgent": "faultline", "summaryTrendStats": ["avg", "p(99)"],
			"setupTimeout": "30s", "tags": {"scenario_version": "1.2.3"}, "discardResponseBodies": true}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := k6opts.Validate([]byte(tt.json), tt.opts...); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateInvalid(t *testing.T) {
	tests := []struct {
		name     string
		json     string
		opts     []k6opts.Option
		wantPath string // path of the (first) problem
		wantMsg  string // substring of that problem's message
		wantN    int    // number of problems; 0 means do not check
	}{
		{
			name: "maxVUs below preAllocatedVUs",
			json: `{"scenarios": {"load": {"executor": "constant-arrival-rate", "rate": 10, "timeUnit": "1s",
				"duration": "1m", "preAllocatedVUs": 50, "maxVUs": 10}}}`,
			wantPath: "scenarios.load.maxVUs", wantMsg: "maxVUs can't be less than preAllocatedVUs", wantN: 1,
		},
		{
			name: "ramping-arrival-rate maxVUs below preAllocatedVUs",
			json: `{"scenarios": {"ramp-up": {"executor": "ramping-arrival-rate", "preAllocatedVUs": 5, "maxVUs": 1,
				"stages": [{"target": 10, "duration": "10s"}]}}}`,
			wantPath: `scenarios["ramp-up"].maxVUs`, wantMsg: "maxVUs", wantN: 1,
		},
		{
			name:     "unknown executor",
			json:     `{"scenarios": {"load": {"executor": "constant-arival-rate", "rate": 10}}}`,
			wantPath: "scenarios.load.executor", wantMsg: "unknown executor type 'constant-arival-rate'", wantN: 1,
		},
		{
			name:     "missing executor",
			json:     `{"scenarios": {"load": {"vus": 1}}}`,
			wantPath: "scenarios.load.executor", wantMsg: "no executor", wantN: 1,
		},
		{
			name:     "unknown scenario field",
			json:     `{"scenarios": {"load": {"executor": "constant-vus", "vus": 1, "duration": "1s", "maxVU": 3}}}`,
			wantPath: "scenarios.load.maxVU", wantMsg: "unknown field", wantN: 1,
		},
		{
			name:     "wrong type in scenario",
			json:     `{"scenarios": {"load": {"executor": "constant-vus", "vus": "ten", "duration": "1s"}}}`,
			wantPath: "scenarios.load", wantMsg: "", wantN: 1,
		},
		{
			name:     "bad stage",
			json:     `{"scenarios": {"rv": {"executor": "ramping-vus", "stages": [{"target": 5, "duration": "5s"}, {"target": -1, "duration": "5s"}]}}}`,
			wantPath: "scenarios.rv.stages[1].target", wantMsg: "can't be negative", wantN: 1,
		},
		{
			name:     "zero VUs",
			json:     `{"scenarios": {"cv": {"executor": "constant-vus", "vus": 0, "duration": "10s"}}}`,
			wantPath: "scenarios.cv.vus", wantMsg: "more than 0", wantN: 1,
		},
		{
			name:     "bad threshold expression",
			json:     `{"thresholds": {"http_req_duration{phase:fault}": ["p(95)<500", "p(99)<<300"]}}`,
			wantPath: `thresholds["http_req_duration{phase:fault}"][1]`, wantMsg: `"p(99)<<300"`, wantN: 1,
		},
		{
			name:     "unknown metric",
			json:     `{"thresholds": {"http_req_durations": ["p(99)<300"]}}`,
			wantPath: `thresholds["http_req_durations"]`, wantMsg: "unknown metric", wantN: 1,
		},
		{
			name:     "unknown metric in sub-metric",
			json:     `{"thresholds": {"latency{phase:fault}": ["p(99)<300"]}}`,
			wantPath: `thresholds["latency{phase:fault}"]`, wantMsg: `unknown metric "latency"`, wantN: 1,
		},
		{
			name:     "aggregation the metric does not support",
			json:     `{"thresholds": {"http_reqs": ["p(99)<300"]}}`,
			wantPath: `thresholds["http_reqs"][0]`, wantMsg: "unsupported aggregation method", wantN: 1,
		},
		{
			name:     "empty sub-metric",
			json:     `{"thresholds": {"http_reqs{}": ["count>1"]}}`,
			wantPath: `thresholds["http_reqs{}"]`, wantMsg: "malformed", wantN: 1,
		},
		{
			name:     "thresholds not a list",
			json:     `{"thresholds": {"http_reqs": "count>1"}}`,
			wantPath: `thresholds["http_reqs"]`, wantN: 1,
		},
		{
			name:     "shortcut conflict",
			json:     `{"duration": "10s", "scenarios": {"cv": {"executor": "constant-vus", "vus": 1, "duration": "10s"}}}`,
			wantPath: "duration", wantMsg: "simultaneously", wantN: 1,
		},
		{
			name:     "shortcut iterations below vus",
			json:     `{"vus": 5, "iterations": 2}`,
			wantPath: "iterations", wantMsg: "can't be less than the number of VUs", wantN: 1,
		},
		{
			name:     "unknown option",
			json:     `{"thresholdz": {}}`,
			wantPath: "thresholdz", wantMsg: "unknown k6 option", wantN: 1,
		},
		{
			name:     "bad option value",
			json:     `{"setupTimeout": "forever"}`,
			wantPath: "setupTimeout", wantN: 1,
		},
		{
			name:     "negative setupTimeout",
			json:     `{"setupTimeout": "-1s"}`,
			wantPath: "setupTimeout", wantMsg: "positive", wantN: 1,
		},
		{
			name:     "bad summaryTrendStats",
			json:     `{"summaryTrendStats": ["avg", "p(x)"]}`,
			wantPath: "summaryTrendStats", wantN: 1,
		},
		{
			name:     "exec not exported",
			json:     `{"scenarios": {"cv": {"executor": "constant-vus", "vus": 1, "duration": "1s", "exec": "faulty"}}}`,
			opts:     []k6opts.Option{k6opts.WithExports("default")},
			wantPath: "scenarios.cv.exec", wantMsg: `"faulty"`, wantN: 1,
		},
		{
			name:     "not an object",
			json:     `[1, 2]`,
			wantPath: "", wantMsg: "JSON object", wantN: 1,
		},
		{
			name: "several problems, sorted by path",
			json: `{"scenarios": {"b": {"executor": "constant-vus", "vus": 0, "duration": "1s"},
				"a": {"executor": "nope"}}, "thresholds": {"nope": ["avg<1"]}}`,
			wantPath: "scenarios.a.executor", wantN: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := k6opts.Validate([]byte(tt.json), tt.opts...)
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			var verr *k6opts.Error
			if !errors.As(err, &verr) {
				t.Fatalf("Validate() error %T %v is not a *k6opts.Error", err, err)
			}
			if tt.wantN != 0 && len(verr.Problems) != tt.wantN {
				t.Errorf("got %d problems, want %d: %v", len(verr.Problems), tt.wantN, err)
			}
			p := verr.Problems[0]
			if p.Path != tt.wantPath {
				t.Errorf("path = %q, want %q (error: %v)", p.Path, tt.wantPath, err)
			}
			if got := k6opts.FormatPath(p.Keys); got != p.Path {
				t.Errorf("FormatPath(%q) = %q, want Path %q", p.Keys, got, p.Path)
			}
			if !strings.Contains(p.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", p.Message, tt.wantMsg)
			}
			if !strings.Contains(err.Error(), p.Path) {
				t.Errorf("Error() = %q does not name the path %q", err.Error(), p.Path)
			}
		})
	}
}

func TestErrorUnwrapsK6Errors(t *testing.T) {
	err := k6opts.Validate([]byte(`{"thresholds": {"http_reqs": ["p(99)<300"]}}`))
	if !errors.Is(err, metrics.ErrInvalidThreshold) {
		t.Fatalf("errors.Is(%v, metrics.ErrInvalidThreshold) = false", err)
	}
}

func TestFormatPath(t *testing.T) {
	tests := []struct {
		keys []string
		want string
	}{
		{nil, ""},
		{[]string{"vus"}, "vus"},
		{[]string{"scenarios", "load", "maxVUs"}, "scenarios.load.maxVUs"},
		{[]string{"scenarios", "123", "vus"}, `scenarios["123"].vus`},
		{[]string{"scenarios", "a-b", "stages", "2", "target"}, `scenarios["a-b"].stages[2].target`},
		{[]string{"thresholds", "http_reqs"}, `thresholds["http_reqs"]`},
		{[]string{"thresholds", "http_req_duration{phase:fault}", "0"}, `thresholds["http_req_duration{phase:fault}"][0]`},
	}
	for _, tt := range tests {
		if got := k6opts.FormatPath(tt.keys); got != tt.want {
			t.Errorf("FormatPath(%q) = %q, want %q", tt.keys, got, tt.want)
		}
	}
}
