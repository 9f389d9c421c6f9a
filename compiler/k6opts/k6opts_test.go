package k6opts_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"faultline.dev/faultline/compiler/k6opts"
)

// A self-signed certificate and key, only for the PEM check of tlsAuth.
const (
	testCert = "-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIQIRi6zePL6mKjOipn+dNuaTAKBggqhkjOPQQDAjASMRAw\n-----END CERTIFICATE-----\n"
	testKey  = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBvD1C0mkDQtT1jI0ZR9tQ3VG9mk1c1x8Hk7rA5pP3B6oAoGCCqGSM49\n-----END EC PRIVATE KEY-----\n"
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
		{"scenario env, tags and browser options", `{"scenarios": {"b_1": {"executor": "shared-iterations",
			"env": {"A": "1"}, "tags": {"t": "v"}, "options": {"browser": {"type": "chromium"}}}}}`, nil},
		{"durations as milliseconds", `{"scenarios": {"cv": {"executor": "constant-vus", "duration": 10000, "gracefulStop": "2500"}}}`, nil},
		{"shortcuts vus+duration", `{"vus": 5, "duration": "10s"}`, nil},
		{"shortcuts stages", `{"stages": [{"target": 5, "duration": "10s"}]}`, nil},
		{"shortcuts stages with vus as startVUs", `{"vus": 0, "stages": [{"target": 5, "duration": "10s"}]}`, nil},
		{"shortcuts iterations", `{"vus": 2, "iterations": 4}`, nil},
		{"shortcuts iterations alone (one VU)", `{"iterations": 3}`, nil},
		{"shortcuts iterations with duration as maxDuration", `{"vus": 2, "iterations": 4, "duration": "10s"}`, nil},
		{"empty stages are no stages", `{"stages": [], "scenarios": {"cv": {"executor": "constant-vus", "duration": "10s"}}}`, nil},
		{"tagged sub-metric thresholds", `{"scenarios": {"cv": {"executor": "constant-vus", "vus": 1, "duration": "1s"}},
			"thresholds": {
				"http_req_duration{phase:fault}": ["p(99)<300", {"threshold": "p(95)<200", "abortOnFail": true, "delayAbortEval": "10s"}],
				"http_reqs{phase:steady}": ["count>100", "rate>10"],
				"http_req_failed{phase:recovery}": ["rate<0.01"],
				"checks": ["rate>0.99"],
				"http_req_duration{expected_response:true}": ["avg<100", "med<80", "max<1000"]}}`, nil},
		{"every operator, spaces, numbers", `{"thresholds": {"http_reqs": [
			"count>1", "count>=1", "count<1", "count<=1", "count==1", "count===1", "count!=1",
			" count  <  5 ", "count<1e3", "count>-1", "count<.5", "rate>=0.5"]}}`, nil},
		{"percentiles from 0 to 100", `{"thresholds": {"http_req_duration": ["p(0)<1", "p(99.99)<1", "p(100)<1", "min<1"]}}`, nil},
		{"every metric type", `{"thresholds": {"vus": ["value<10"], "vus_max": ["value<10"], "iterations": ["count>0", "rate>0"],
			"dropped_iterations": ["count==0"], "data_sent": ["count>0"], "data_received": ["rate>0"], "iteration_duration": ["p(95)<1"],
			"group_duration{group:::checkout}": ["avg<400"], "grpc_req_duration": ["p(99)<5"], "ws_ping": ["max<1"],
			"http_req_blocked": ["p(90)<1"], "http_req_connecting": ["p(90)<1"], "http_req_tls_handshaking": ["p(90)<1"],
			"http_req_sending": ["p(90)<1"], "http_req_waiting": ["p(90)<1"], "http_req_receiving": ["p(90)<1"]}}`, nil},
		{"sub-metric tag spacing and quotes", `{"thresholds": {"http_req_duration{ a : b ,c:'d'}": ["p(99)<1"]}}`, nil},
		{"threshold object with defaults", `{"thresholds": {"checks": [{"threshold": "rate>0.9"}, {"threshold": "rate>0.5", "delayAbortEval": 1000}]}}`, nil},
		{"empty and null threshold lists", `{"thresholds": {"checks": [], "http_reqs": null}}`, nil},
		{"custom metric", `{"thresholds": {"fault_errors": ["count<10"], "fault_latency{phase:fault}": ["p(90)<50"]}}`,
			[]k6opts.Option{k6opts.WithMetric("fault_errors", k6opts.Counter), k6opts.WithMetric("fault_latency", k6opts.Trend)}},
		{"custom metric redeclaring a built-in of the same type", `{"thresholds": {"http_reqs": ["count>1"]}}`,
			[]k6opts.Option{k6opts.WithMetric("http_reqs", k6opts.Counter)}},
		{"other options", `{"noConnectionReuse": true, "userAgent": "faultline", "summaryTrendStats": ["avg", "p(99)"],
			"setupTimeout": "30s", "tags": {"scenario_version": "1.2.3"}, "discardResponseBodies": true}`, nil},
		{"network options", `{"batch": 10, "batchPerHost": 2, "maxRedirects": 0, "rps": 0, "hosts": {"a.test": "127.0.0.1:8080"},
			"dns": {"ttl": "1m", "select": "roundRobin", "policy": "any"}, "blacklistIPs": ["10.0.0.0/8", "fd00::/8"],
			"blockHostnames": ["*.example.com", "x.test"], "tlsVersion": {"min": "tls1.2", "max": "tls1.3"},
			"tlsCipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], "insecureSkipTLSVerify": false, "throw": true}`, nil},
		{"dns ttl forms", `{"dns": {"ttl": "inf"}}`, nil},
		{"dns ttl in milliseconds", `{"dns": {"ttl": "3000"}}`, nil},
		{"one tls version", `{"tlsVersion": "tls1.2"}`, nil},
		{"tls client certificate", `{"tlsAuth": [{"domains": ["a.test"], "cert": ` + jsonString(testCert) + `, "key": ` + jsonString(testKey) + `}]}`, nil},
		{"run options", `{"paused": false, "noSetup": true, "noTeardown": true, "noCookiesReset": true, "noVUConnectionReuse": true,
			"minIterationDuration": "1s", "teardownTimeout": "10s", "summaryTimeUnit": "ms", "httpDebug": "full",
			"systemTags": ["status", "method", "url", "vu", "iter", "scenario"], "metricSamplesBufferSize": 100,
			"cloud": {"name": "x"}, "ext": {"loadimpact": {}}}`, nil},
		{"execution segments", `{"executionSegment": "1/4:50%", "executionSegmentSequence": "0,0.25,1/2,1"}`, nil},
		{"execution segment alone", `{"executionSegment": "25%"}`, nil},
		{"null options are unset", `{"vus": null, "duration": null, "scenarios": null, "thresholds": null}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := k6opts.Validate([]byte(tt.json), tt.opts...); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
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
			wantPath: "scenarios.load.maxVUs", wantMsg: "maxVUs (10) must be at least preAllocatedVUs (50)", wantN: 1,
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
			wantPath: "scenarios.load.executor", wantMsg: `unknown executor "constant-arival-rate" (did you mean "constant-arrival-rate"?)`, wantN: 1,
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
			wantPath: "scenarios.load", wantMsg: `vus: expected a whole number, got a string ("ten")`, wantN: 1,
		},
		{
			name:     "bad stage",
			json:     `{"scenarios": {"rv": {"executor": "ramping-vus", "stages": [{"target": 5, "duration": "5s"}, {"target": -1, "duration": "5s"}]}}}`,
			wantPath: "scenarios.rv.stages[1].target", wantMsg: "must not be negative", wantN: 1,
		},
		{
			name:     "zero VUs",
			json:     `{"scenarios": {"cv": {"executor": "constant-vus", "vus": 0, "duration": "10s"}}}`,
			wantPath: "scenarios.cv.vus", wantMsg: "greater than 0", wantN: 1,
		},
		{
			name:     "bad threshold expression",
			json:     `{"thresholds": {"http_req_duration{phase:fault}": ["p(95)<500", "p(99)<<300"]}}`,
			wantPath: `thresholds["http_req_duration{phase:fault}"][1]`, wantMsg: `"p(99)<<300"`, wantN: 1,
		},
		{
			name:     "unknown metric",
			json:     `{"thresholds": {"http_req_durations": ["p(99)<300"]}}`,
			wantPath: `thresholds["http_req_durations"]`, wantMsg: `unknown metric "http_req_durations": not one of k6's built-in metrics; did you mean "http_req_duration"?`, wantN: 1,
		},
		{
			name:     "unknown metric in sub-metric",
			json:     `{"thresholds": {"latency{phase:fault}": ["p(99)<300"]}}`,
			wantPath: `thresholds["latency{phase:fault}"]`, wantMsg: `unknown metric "latency"`, wantN: 1,
		},
		{
			name:     "aggregation the metric does not support",
			json:     `{"thresholds": {"http_reqs": ["p(99)<300"]}}`,
			wantPath: `thresholds["http_reqs"][0]`, wantMsg: "http_reqs is a counter metric, which has no p(99); use count, rate", wantN: 1,
		},
		{
			name:     "empty sub-metric",
			json:     `{"thresholds": {"http_reqs{}": ["count>1"]}}`,
			wantPath: `thresholds["http_reqs{}"]`, wantMsg: "malformed", wantN: 1,
		},
		{
			name:     "thresholds not a list",
			json:     `{"thresholds": {"http_reqs": "count>1"}}`,
			wantPath: `thresholds["http_reqs"]`, wantMsg: "must be a list", wantN: 1,
		},
		{
			name:     "shortcut conflict",
			json:     `{"duration": "10s", "scenarios": {"cv": {"executor": "constant-vus", "vus": 1, "duration": "10s"}}}`,
			wantPath: "duration", wantMsg: "cannot be used together with scenarios", wantN: 1,
		},
		{
			name:     "shortcut iterations below vus",
			json:     `{"vus": 5, "iterations": 2}`,
			wantPath: "iterations", wantMsg: "iterations (2) must be at least vus (5)", wantN: 1,
		},
		{
			name:     "unknown option",
			json:     `{"thresholdz": {}}`,
			wantPath: "thresholdz", wantMsg: `unknown k6 option "thresholdz" (did you mean "thresholds"?)`, wantN: 1,
		},
		{
			name:     "bad option value",
			json:     `{"setupTimeout": "forever"}`,
			wantPath: "setupTimeout", wantMsg: `"forever" is not a duration`, wantN: 1,
		},
		{
			name:     "negative setupTimeout",
			json:     `{"setupTimeout": "-1s"}`,
			wantPath: "setupTimeout", wantMsg: "positive", wantN: 1,
		},
		{
			name:     "bad summaryTrendStats",
			json:     `{"summaryTrendStats": ["avg", "p(x)"]}`,
			wantPath: "summaryTrendStats", wantMsg: `entry 1: "p(x)" is not a trend stat`, wantN: 1,
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

		// Document shape.
		{name: "not JSON", json: `{"vus": }`, wantPath: "", wantMsg: "options must be a JSON object", wantN: 1},
		{name: "trailing data", json: `{} {}`, wantPath: "", wantMsg: "unexpected data", wantN: 1},
		{name: "option k6 does not read from a script", json: `{"linger": true}`, wantPath: "linger", wantMsg: "--linger flag", wantN: 1},
		{name: "removed option", json: `{"vusMax": 3}`, wantPath: "vusMax", wantMsg: "maxVUs", wantN: 1},

		// Option types, reported at the option's key.
		{name: "bool option", json: `{"throw": "yes"}`, wantPath: "throw", wantMsg: "expected true or false", wantN: 1},
		{name: "int option", json: `{"vus": 1.5, "duration": "1s"}`, wantPath: "vus", wantMsg: "expected a whole number, got a number (1.5)", wantN: 1},
		{name: "int option as string", json: `{"batch": "3"}`, wantPath: "batch", wantMsg: "whole number", wantN: 1},
		{name: "string option", json: `{"userAgent": 1}`, wantPath: "userAgent", wantMsg: "expected a string", wantN: 1},
		{name: "string list option", json: `{"systemTags": ["url", 3]}`, wantPath: "systemTags", wantMsg: "item 1: expected a string", wantN: 1},
		{name: "string map option", json: `{"tags": {"a": 1}}`, wantPath: "tags", wantMsg: `"a": expected a string`, wantN: 1},
		{name: "object option", json: `{"cloud": []}`, wantPath: "cloud", wantMsg: "expected an object", wantN: 1},
		{name: "stages not a list", json: `{"stages": {"duration": "1s"}}`, wantPath: "stages", wantMsg: "a list of {duration, target} stages", wantN: 1},
		{name: "dns field type", json: `{"dns": {"select": 1}}`, wantPath: "dns", wantMsg: "select: expected a string", wantN: 1},
		{name: "tlsVersion type", json: `{"tlsVersion": 1.2}`, wantPath: "tlsVersion", wantMsg: `a version such as "tls1.2"`, wantN: 1},
		{name: "tlsAuth item type", json: `{"tlsAuth": ["x"]}`, wantPath: "tlsAuth", wantMsg: "item 0: expected an object", wantN: 1},

		// Option rules.
		{name: "negative batch", json: `{"batch": -1}`, wantPath: "batch", wantMsg: "at least 0", wantN: 1},
		{name: "negative rps", json: `{"rps": -5}`, wantPath: "rps", wantMsg: "at least 0", wantN: 1},
		{name: "zero teardownTimeout", json: `{"teardownTimeout": "0s"}`, wantPath: "teardownTimeout", wantMsg: "positive", wantN: 1},
		{name: "negative minIterationDuration", json: `{"minIterationDuration": "-1s"}`, wantPath: "minIterationDuration", wantMsg: "negative", wantN: 1},
		{name: "dns unknown field", json: `{"dns": {"ttl": "1m", "tll": "1m"}}`, wantPath: "dns.tll", wantMsg: `unknown field "tll"`, wantN: 1},
		{name: "dns select", json: `{"dns": {"select": "fastest"}}`, wantPath: "dns.select", wantMsg: `"first", "random" or "roundRobin"`, wantN: 1},
		{name: "dns policy", json: `{"dns": {"policy": "ipv4"}}`, wantPath: "dns.policy", wantMsg: "preferIPv4", wantN: 1},
		{name: "dns ttl", json: `{"dns": {"ttl": "soon"}}`, wantPath: "dns.ttl", wantMsg: `"inf"`, wantN: 1},
		{name: "blacklistIPs not CIDR", json: `{"blacklistIPs": ["10.0.0.0/8", "10.0.0.1"]}`, wantPath: "blacklistIPs[1]", wantMsg: "CIDR", wantN: 1},
		{name: "blockHostnames star inside", json: `{"blockHostnames": ["a.*.com"]}`, wantPath: "blockHostnames[0]", wantMsg: "leading", wantN: 1},
		{name: "blockHostnames star alone", json: `{"blockHostnames": ["*"]}`, wantPath: "blockHostnames[0]", wantN: 1},
		{name: "hosts empty address", json: `{"hosts": {"a.test": ""}}`, wantPath: "hosts", wantMsg: "empty", wantN: 1},
		{name: "tlsVersion unknown", json: `{"tlsVersion": "tls1.9"}`, wantPath: "tlsVersion", wantMsg: `unknown TLS version "tls1.9"`, wantN: 1},
		{name: "tlsVersion range reversed", json: `{"tlsVersion": {"min": "tls1.3", "max": "tls1.2"}}`, wantPath: "tlsVersion", wantMsg: "newer than max", wantN: 1},
		{name: "tlsVersion unknown min", json: `{"tlsVersion": {"min": "tls1", "max": "tls1.2"}}`, wantPath: "tlsVersion.min", wantN: 1},
		{name: "tlsVersion unknown field", json: `{"tlsVersion": {"min": "tls1.2", "max": "tls1.3", "mid": "x"}}`, wantPath: "tlsVersion.mid", wantN: 1},
		{name: "tlsCipherSuites unknown", json: `{"tlsCipherSuites": ["NOPE"]}`, wantPath: "tlsCipherSuites[0]", wantMsg: `unknown cipher suite "NOPE"`, wantN: 1},
		{name: "tlsAuth not PEM", json: `{"tlsAuth": [{"cert": "x", "key": ` + jsonString(testKey) + `}]}`, wantPath: "tlsAuth[0].cert", wantMsg: "PEM", wantN: 1},
		{name: "tlsAuth unknown field", json: `{"tlsAuth": [{"cert": ` + jsonString(testCert) + `, "key": ` + jsonString(testKey) + `, "pass": "x"}]}`, wantPath: "tlsAuth[0].pass", wantN: 1},
		{name: "systemTags unknown", json: `{"systemTags": ["status", "latency"]}`, wantPath: "systemTags[1]", wantMsg: `unknown system tag "latency"`, wantN: 1},
		{name: "summaryTimeUnit", json: `{"summaryTimeUnit": "h"}`, wantPath: "summaryTimeUnit", wantMsg: `"s", "ms" or "us"`, wantN: 1},
		{name: "summaryTrendStats percentile out of range", json: `{"summaryTrendStats": ["p(101)"]}`, wantPath: "summaryTrendStats", wantMsg: "from 0 to 100", wantN: 1},
		{name: "metricSamplesBufferSize zero", json: `{"metricSamplesBufferSize": 0}`, wantPath: "metricSamplesBufferSize", wantMsg: "at least 1", wantN: 1},
		{name: "execution segment above 1", json: `{"executionSegment": "2"}`, wantPath: "executionSegment", wantMsg: "outside 0 to 1", wantN: 1},
		{name: "execution segment reversed", json: `{"executionSegment": "1/2:1/4"}`, wantPath: "executionSegment", wantMsg: "not before its end", wantN: 1},
		{name: "execution segment not a number", json: `{"executionSegment": "half"}`, wantPath: "executionSegment", wantMsg: "fraction", wantN: 1},
		{name: "execution segment not in sequence", json: `{"executionSegment": "0:1/3", "executionSegmentSequence": "0,1/4,1"}`, wantPath: "executionSegment", wantMsg: "not a step", wantN: 1},
		{name: "execution segment sequence decreasing", json: `{"executionSegmentSequence": "0,1/2,1/4,1"}`, wantPath: "executionSegmentSequence", wantMsg: "must increase", wantN: 1},
		{name: "execution segment sequence with spaces", json: `{"executionSegmentSequence": "0, 1"}`, wantPath: "executionSegmentSequence", wantMsg: "not a fraction", wantN: 1},
		{name: "dns ttl as a number", json: `{"dns": {"ttl": 3000}}`, wantPath: "dns", wantMsg: "ttl: expected a string", wantN: 1},
		{name: "execution segment sequence of one point", json: `{"executionSegmentSequence": "1"}`, wantPath: "executionSegmentSequence", wantMsg: "two points", wantN: 1},

		// Shortcuts.
		{name: "iterations and stages", json: `{"iterations": 5, "stages": [{"duration": "10s", "target": 3}]}`, wantPath: "iterations", wantMsg: "cannot be used together", wantN: 1},
		{name: "duration and stages", json: `{"duration": "5s", "stages": [{"duration": "10s", "target": 3}]}`, wantPath: "duration", wantMsg: "cannot be used together", wantN: 1},
		{name: "iterations with scenarios", json: `{"iterations": 3, "scenarios": {"cv": {"executor": "constant-vus", "duration": "10s"}}}`, wantPath: "iterations", wantMsg: "together with scenarios", wantN: 1},
		{name: "stages with scenarios", json: `{"stages": [{"duration": "1s", "target": 1}], "scenarios": {}}`, wantPath: "stages", wantMsg: "together with scenarios", wantN: 1},
		{name: "vus with scenarios", json: `{"vus": 5, "scenarios": {"cv": {"executor": "constant-vus", "duration": "10s"}}}`, wantPath: "vus", wantMsg: "does not apply when scenarios", wantN: 1},
		{name: "duration with empty scenarios", json: `{"duration": "10s", "scenarios": {}}`, wantPath: "duration", wantN: 1},
		{name: "vus alone", json: `{"vus": 5}`, wantPath: "vus", wantMsg: "starts no load", wantN: 1},
		{name: "zero duration", json: `{"duration": "0s"}`, wantPath: "duration", wantMsg: "greater than 0", wantN: 1},
		{name: "shortcut zero vus", json: `{"vus": 0, "duration": "5s"}`, wantPath: "vus", wantMsg: "greater than 0", wantN: 1},
		{name: "shortcut duration below the minimum", json: `{"duration": "500ms"}`, wantPath: "duration", wantMsg: "at least 1s", wantN: 1},
		{name: "shortcut maxDuration is duration", json: `{"iterations": 5, "duration": "0.5s"}`, wantPath: "duration", wantMsg: "maxDuration must be at least 1s", wantN: 1},
		{name: "shortcut stages never start a VU", json: `{"vus": 0, "stages": [{"duration": "10s", "target": 0}]}`, wantPath: "stages", wantMsg: "never runs a VU", wantN: 1},
		{name: "shortcut negative startVUs is vus", json: `{"vus": -1, "stages": [{"duration": "10s", "target": 2}]}`, wantPath: "vus", wantMsg: "startVUs must not be negative", wantN: 1},
		{name: "shortcut stage without target", json: `{"stages": [{"duration": "10s", "target": 1}, {"duration": "10s"}]}`, wantPath: "stages[1].target", wantMsg: "stage 1 has no target", wantN: 1},
		{name: "shortcut stage unknown field", json: `{"stages": [{"duration": "10s", "target": 1, "vus": 2}]}`, wantPath: "stages[0].vus", wantMsg: "only duration and target", wantN: 1},
		{name: "default scenario exec not exported", json: `{}`, opts: []k6opts.Option{k6opts.WithExports("main")}, wantPath: "", wantMsg: `no function "default"`, wantN: 1},

		// Scenario shape.
		{name: "scenarios not an object", json: `{"scenarios": []}`, wantPath: "scenarios", wantMsg: "object of scenario name", wantN: 1},
		{name: "scenario not an object", json: `{"scenarios": {"a": []}}`, wantPath: "scenarios.a", wantMsg: "must be an object", wantN: 1},
		{name: "null scenario", json: `{"scenarios": {"a": null}}`, wantPath: "scenarios.a.executor", wantMsg: "no executor", wantN: 1},
		{name: "executor not a string", json: `{"scenarios": {"a": {"executor": 5}}}`, wantPath: "scenarios.a.executor", wantMsg: "expected a string", wantN: 1},
		{name: "externally-controlled", json: `{"scenarios": {"a": {"executor": "externally-controlled", "vus": 1}}}`, wantPath: "scenarios.a.executor", wantMsg: "REST API", wantN: 1},
		{name: "scenario name", json: `{"scenarios": {"a b": {"executor": "constant-vus", "duration": "10s"}}}`, wantPath: `scenarios["a b"]`, wantMsg: "only letters", wantN: 1},
		{name: "field of another executor", json: `{"scenarios": {"a": {"executor": "constant-vus", "duration": "10s", "gracefulRampDown": "1s"}}}`, wantPath: "scenarios.a.gracefulRampDown", wantMsg: "constant-vus does not take gracefulRampDown (ramping-vus does)", wantN: 1},
		{name: "misspelt common field", json: `{"scenarios": {"a": {"executor": "constant-vus", "duration": "10s", "startTim": "1s"}}}`, wantPath: "scenarios.a.startTim", wantMsg: `did you mean "startTime"?`, wantN: 1},
		{name: "empty exec", json: `{"scenarios": {"a": {"executor": "constant-vus", "duration": "10s", "exec": ""}}}`, wantPath: "scenarios.a.exec", wantMsg: "must name an exported function", wantN: 1},
		{name: "exec not a string", json: `{"scenarios": {"a": {"executor": "constant-vus", "duration": "10s", "exec": 5}}}`, wantPath: "scenarios.a", wantMsg: "exec: expected a string", wantN: 1},
		{name: "env value not a string", json: `{"scenarios": {"a": {"executor": "constant-vus", "duration": "10s", "env": {"A": 1}}}}`, wantPath: "scenarios.a", wantMsg: `env: "A": expected a string`, wantN: 1},
		{name: "bad duration in scenario", json: `{"scenarios": {"a": {"executor": "constant-vus", "duration": "ten seconds"}}}`, wantPath: "scenarios.a", wantMsg: `duration: "ten seconds" is not a duration`, wantN: 1},
		{name: "stage of the wrong type", json: `{"scenarios": {"a": {"executor": "ramping-vus", "stages": [{"duration": "1s", "target": "2"}]}}}`, wantPath: "scenarios.a", wantMsg: "stages: stage 0: target: expected a whole number", wantN: 1},
		{name: "stage without duration", json: `{"scenarios": {"a": {"executor": "ramping-arrival-rate", "preAllocatedVUs": 1, "stages": [{"target": 2}]}}}`, wantPath: "scenarios.a.stages[0].duration", wantMsg: "stage 0 has no duration", wantN: 1},
		{name: "stage with an unknown field", json: `{"scenarios": {"a": {"executor": "ramping-vus", "stages": [{"duration": "1s", "target": 1, "x": 1}]}}}`, wantPath: "scenarios.a.stages[0].x", wantN: 1},

		// Thresholds.
		{name: "thresholds not an object", json: `{"thresholds": []}`, wantPath: "thresholds", wantMsg: "object of metric name", wantN: 1},
		{name: "threshold of the wrong type", json: `{"thresholds": {"http_reqs": ["count>1", 1]}}`, wantPath: `thresholds["http_reqs"][1]`, wantMsg: "not a number (1)", wantN: 1},
		{name: "threshold object without expression", json: `{"thresholds": {"http_reqs": [{"abortOnFail": true}]}}`, wantPath: `thresholds["http_reqs"][0]`, wantMsg: "no threshold expression", wantN: 1},
		{name: "threshold object unknown field", json: `{"thresholds": {"http_reqs": [{"threshold": "count>1", "abortOnFial": true}]}}`, wantPath: `thresholds["http_reqs"][0].abortOnFial`, wantMsg: "unknown field", wantN: 1},
		{name: "threshold object bad delay", json: `{"thresholds": {"http_reqs": [{"threshold": "count>1", "delayAbortEval": "soon"}]}}`, wantPath: `thresholds["http_reqs"][0].delayAbortEval`, wantN: 1},
		{name: "threshold object negative delay", json: `{"thresholds": {"http_reqs": [{"threshold": "count>1", "abortOnFail": true, "delayAbortEval": "-1s"}]}}`, wantPath: `thresholds["http_reqs"][0].delayAbortEval`, wantMsg: "negative", wantN: 1},
		{name: "threshold abortOnFail not a bool", json: `{"thresholds": {"http_reqs": [{"threshold": "count>1", "abortOnFail": "yes"}]}}`, wantPath: `thresholds["http_reqs"][0].abortOnFail`, wantN: 1},
		{name: "single equals", json: `{"thresholds": {"http_reqs": ["count=1"]}}`, wantPath: `thresholds["http_reqs"][0]`, wantMsg: "no operator", wantN: 1},
		{name: "no value", json: `{"thresholds": {"http_reqs": ["count>"]}}`, wantPath: `thresholds["http_reqs"][0]`, wantMsg: "not a number", wantN: 1},
		{name: "unit in value", json: `{"thresholds": {"http_req_duration": ["avg<1ms"]}}`, wantPath: `thresholds["http_req_duration"][0]`, wantMsg: "plain milliseconds", wantN: 1},
		{name: "two conditions", json: `{"thresholds": {"http_reqs": ["count<1 && count>0"]}}`, wantPath: `thresholds["http_reqs"][0]`, wantN: 1},
		{name: "NaN value", json: `{"thresholds": {"http_reqs": ["count<NaN"]}}`, wantPath: `thresholds["http_reqs"][0]`, wantN: 1},
		{name: "percentile above 100", json: `{"thresholds": {"http_req_duration": ["p(101)<1"]}}`, wantPath: `thresholds["http_req_duration"][0]`, wantMsg: "from 0 to 100", wantN: 1},
		{name: "percentile with spaces", json: `{"thresholds": {"http_req_duration": ["p( 99 )<1"]}}`, wantPath: `thresholds["http_req_duration"][0]`, wantN: 1},
		{name: "unknown aggregation", json: `{"thresholds": {"http_req_duration": ["P(99)<1"]}}`, wantPath: `thresholds["http_req_duration"][0]`, wantMsg: "no aggregation", wantN: 1},
		{name: "gauge has no count", json: `{"thresholds": {"vus": ["value>1", "count>1"]}}`, wantPath: `thresholds["vus"][1]`, wantMsg: "gauge metric, which has no count; use value", wantN: 1},
		{name: "rate has no count", json: `{"thresholds": {"checks": ["count>1"]}}`, wantPath: `thresholds["checks"][0]`, wantMsg: "use rate", wantN: 1},
		{name: "trend has no rate", json: `{"thresholds": {"http_req_duration": ["rate>1"]}}`, wantPath: `thresholds["http_req_duration"][0]`, wantMsg: "use avg, min, max, med, p(N)", wantN: 1},
		{name: "tag without value", json: `{"thresholds": {"http_reqs{phase}": ["count>1"]}}`, wantPath: `thresholds["http_reqs{phase}"]`, wantMsg: "malformed tag", wantN: 1},
		{name: "tag with empty value", json: `{"thresholds": {"http_reqs{phase:}": ["count>1"]}}`, wantPath: `thresholds["http_reqs{phase:}"]`, wantN: 1},
		{name: "tag with empty key", json: `{"thresholds": {"http_reqs{:x}": ["count>1"]}}`, wantPath: `thresholds["http_reqs{:x}"]`, wantN: 1},
		{name: "trailing comma in tags", json: `{"thresholds": {"http_reqs{a:b,}": ["count>1"]}}`, wantPath: `thresholds["http_reqs{a:b,}"]`, wantN: 1},
		{name: "unclosed sub-metric", json: `{"thresholds": {"http_reqs{a:b": ["count>1"]}}`, wantPath: `thresholds["http_reqs{a:b"]`, wantMsg: "end the name", wantN: 1},
		{name: "text after sub-metric", json: `{"thresholds": {"http_reqs{a:b}x": ["count>1"]}}`, wantPath: `thresholds["http_reqs{a:b}x"]`, wantN: 1},
		{name: "space before sub-metric", json: `{"thresholds": {"http_reqs {a:b}": ["count>1"]}}`, wantPath: `thresholds["http_reqs {a:b}"]`, wantMsg: "unknown metric", wantN: 1},
		{name: "custom metric not declared", json: `{"thresholds": {"errors": ["count<1"]}}`, opts: []k6opts.Option{k6opts.WithMetric("fault_errors", k6opts.Counter)}, wantPath: `thresholds["errors"]`, wantMsg: `nor a declared custom metric ("fault_errors")`, wantN: 1},
		{name: "custom metric of the wrong type", json: `{"thresholds": {"latency": ["count<1"]}}`, opts: []k6opts.Option{k6opts.WithMetric("latency", k6opts.Trend)}, wantPath: `thresholds["latency"][0]`, wantMsg: "trend metric", wantN: 1},
		{name: "custom metric redeclaring a built-in", json: `{}`, opts: []k6opts.Option{k6opts.WithMetric("http_reqs", k6opts.Trend)}, wantPath: "", wantMsg: "built-in http_reqs is a counter", wantN: 1},
		{name: "custom metric name", json: `{}`, opts: []k6opts.Option{k6opts.WithMetric("my-metric", k6opts.Trend)}, wantPath: "", wantMsg: "custom metric name", wantN: 1},
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
			for i := 1; i < len(verr.Problems); i++ {
				if verr.Problems[i-1].Path > verr.Problems[i].Path {
					t.Errorf("problems not sorted by path: %q before %q", verr.Problems[i-1].Path, verr.Problems[i].Path)
				}
			}
		})
	}
}

// TestExecutorRules: every rule of every executor, each on a scenario that
// breaks only that rule, next to the valid boundary case. want lists the
// paths of all problems (relative to the scenario), sorted; empty means
// valid.
func TestExecutorRules(t *testing.T) {
	type tc struct {
		name     string
		scenario string // JSON fields after "executor"
		want     []string
		msg      string // substring of the first problem's message
	}
	byExecutor := map[string][]tc{
		k6opts.ConstantArrivalRate: {
			{"valid with defaults", `"rate": 1, "duration": "1s", "preAllocatedVUs": 1`, nil, ""},
			{"zero preallocated VUs and maxVUs", `"rate": 1, "duration": "1s", "preAllocatedVUs": 0, "maxVUs": 0`, nil, ""},
			{"maxVUs equal to preAllocatedVUs", `"rate": 1, "duration": "1s", "preAllocatedVUs": 3, "maxVUs": 3`, nil, ""},
			{"rate required", `"duration": "1s", "preAllocatedVUs": 1`, []string{"rate"}, "needs rate"},
			{"rate zero", `"rate": 0, "duration": "1s", "preAllocatedVUs": 1`, []string{"rate"}, "greater than 0"},
			{"rate negative", `"rate": -1, "duration": "1s", "preAllocatedVUs": 1`, []string{"rate"}, "greater than 0"},
			{"duration required", `"rate": 1, "preAllocatedVUs": 1`, []string{"duration"}, "needs duration"},
			{"duration below 1s", `"rate": 1, "duration": "999ms", "preAllocatedVUs": 1`, []string{"duration"}, "at least 1s"},
			{"preAllocatedVUs required", `"rate": 1, "duration": "1s"`, []string{"preAllocatedVUs"}, "needs preAllocatedVUs"},
			{"preAllocatedVUs negative", `"rate": 1, "duration": "1s", "preAllocatedVUs": -1, "maxVUs": 1`, []string{"preAllocatedVUs"}, "must not be negative"},
			{"maxVUs below preAllocatedVUs", `"rate": 1, "duration": "1s", "preAllocatedVUs": 2, "maxVUs": 1`, []string{"maxVUs"}, "at least preAllocatedVUs"},
			{"timeUnit zero", `"rate": 1, "duration": "1s", "preAllocatedVUs": 1, "timeUnit": "0s"`, []string{"timeUnit"}, "greater than 0"},
			{"timeUnit negative", `"rate": 1, "duration": "1s", "preAllocatedVUs": 1, "timeUnit": "-1s"`, []string{"timeUnit"}, "greater than 0"},
			{"startTime negative", `"rate": 1, "duration": "1s", "preAllocatedVUs": 1, "startTime": "-1s"`, []string{"startTime"}, "must not be negative"},
			{"gracefulStop negative", `"rate": 1, "duration": "1s", "preAllocatedVUs": 1, "gracefulStop": "-1s"`, []string{"gracefulStop"}, "must not be negative"},
			{"zero startTime and gracefulStop", `"rate": 1, "duration": "1s", "preAllocatedVUs": 1, "startTime": "0s", "gracefulStop": "0s"`, nil, ""},
			{"nothing set", ``, []string{"duration", "preAllocatedVUs", "rate"}, ""},
			{"field of another executor", `"rate": 1, "duration": "1s", "preAllocatedVUs": 1, "vus": 1`, []string{"vus"}, "does not take vus"},
		},
		k6opts.RampingArrivalRate: {
			{"valid with defaults", `"preAllocatedVUs": 1, "stages": [{"duration": "1s", "target": 1}]`, nil, ""},
			{"all zero is valid", `"preAllocatedVUs": 0, "startRate": 0, "stages": [{"duration": "0s", "target": 0}]`, nil, ""},
			{"stages required", `"preAllocatedVUs": 1`, []string{"stages"}, "at least one stage"},
			{"stages empty", `"preAllocatedVUs": 1, "stages": []`, []string{"stages"}, "at least one stage"},
			{"stage target negative", `"preAllocatedVUs": 1, "stages": [{"duration": "1s", "target": 1}, {"duration": "1s", "target": -1}]`, []string{"stages[1].target"}, "target of stage 1"},
			{"stage duration negative", `"preAllocatedVUs": 1, "stages": [{"duration": "-1s", "target": 1}]`, []string{"stages[0].duration"}, "duration of stage 0"},
			{"stage without target", `"preAllocatedVUs": 1, "stages": [{"duration": "1s"}]`, []string{"stages[0].target"}, "has no target"},
			{"preAllocatedVUs required", `"stages": [{"duration": "1s", "target": 1}]`, []string{"preAllocatedVUs"}, "needs preAllocatedVUs"},
			{"maxVUs below preAllocatedVUs", `"preAllocatedVUs": 5, "maxVUs": 4, "stages": [{"duration": "1s", "target": 1}]`, []string{"maxVUs"}, "(4) must be at least preAllocatedVUs (5)"},
			{"startRate negative", `"preAllocatedVUs": 1, "startRate": -1, "stages": [{"duration": "1s", "target": 1}]`, []string{"startRate"}, "must not be negative"},
			{"timeUnit zero", `"preAllocatedVUs": 1, "timeUnit": "0s", "stages": [{"duration": "1s", "target": 1}]`, []string{"timeUnit"}, "greater than 0"},
			{"several at once", `"preAllocatedVUs": -1, "maxVUs": -2, "startRate": -1, "timeUnit": "-1s", "stages": [{"duration": "1s", "target": 1}]`,
				[]string{"maxVUs", "maxVUs", "preAllocatedVUs", "startRate", "timeUnit"}, ""},
			{"field of another executor", `"preAllocatedVUs": 1, "rate": 5, "stages": [{"duration": "1s", "target": 1}]`, []string{"rate"}, "constant-arrival-rate does"},
		},
		k6opts.ConstantVUs: {
			{"valid with defaults", `"duration": "1s"`, nil, ""},
			{"duration required", `"vus": 2`, []string{"duration"}, "needs duration"},
			{"duration below 1s", `"duration": "500ms"`, []string{"duration"}, "at least 1s"},
			{"vus zero", `"vus": 0, "duration": "1s"`, []string{"vus"}, "greater than 0"},
			{"vus negative", `"vus": -3, "duration": "1s"`, []string{"vus"}, "not -3"},
			{"gracefulStop negative", `"duration": "1s", "gracefulStop": "-5s"`, []string{"gracefulStop"}, "must not be negative"},
			{"field of another executor", `"duration": "1s", "iterations": 5`, []string{"iterations"}, "does not take iterations"},
		},
		k6opts.RampingVUs: {
			{"valid with defaults", `"stages": [{"duration": "1s", "target": 0}]`, nil, ""},
			{"startVUs zero with a target", `"startVUs": 0, "stages": [{"duration": "1s", "target": 2}]`, nil, ""},
			{"stages required", `"startVUs": 1`, []string{"stages"}, "at least one stage"},
			{"never runs a VU", `"startVUs": 0, "stages": [{"duration": "1s", "target": 0}]`, []string{"stages"}, "never runs a VU"},
			{"startVUs negative", `"startVUs": -1, "stages": [{"duration": "1s", "target": 1}]`, []string{"startVUs"}, "must not be negative"},
			{"stage target negative", `"stages": [{"duration": "1s", "target": -1}]`, []string{"stages[0].target"}, "must not be negative"},
			{"gracefulRampDown negative", `"stages": [{"duration": "1s", "target": 1}], "gracefulRampDown": "-1s"`, []string{"gracefulRampDown"}, "must not be negative"},
			{"field of another executor", `"stages": [{"duration": "1s", "target": 1}], "maxVUs": 3`, []string{"maxVUs"}, "does not take maxVUs"},
		},
		k6opts.PerVUIterations: {
			{"valid with defaults", ``, nil, ""},
			{"maxDuration exactly 1s", `"maxDuration": "1s"`, nil, ""},
			{"vus zero", `"vus": 0`, []string{"vus"}, "greater than 0"},
			{"iterations zero", `"iterations": 0`, []string{"iterations"}, "greater than 0"},
			{"both zero", `"vus": 0, "iterations": 0`, []string{"iterations", "vus"}, ""},
			{"maxDuration below 1s", `"maxDuration": "0.5s"`, []string{"maxDuration"}, "at least 1s"},
			{"fewer iterations than VUs is fine", `"vus": 5, "iterations": 1`, nil, ""},
			{"field of another executor", `"duration": "1s"`, []string{"duration"}, "does not take duration"},
		},
		k6opts.SharedIterations: {
			{"valid with defaults", ``, nil, ""},
			{"iterations equal to vus", `"vus": 3, "iterations": 3`, nil, ""},
			{"iterations below vus", `"vus": 3, "iterations": 2`, []string{"iterations"}, "iterations (2) must be at least vus (3)"},
			{"default iterations below vus", `"vus": 3`, []string{"iterations"}, "iterations (1) must be at least vus (3)"},
			{"vus zero", `"vus": 0, "iterations": 0`, []string{"iterations", "vus"}, ""},
			{"maxDuration below 1s", `"maxDuration": "10ms"`, []string{"maxDuration"}, "at least 1s"},
			{"startTime negative", `"startTime": "-1ms"`, []string{"startTime"}, "must not be negative"},
		},
	}
	for _, executor := range k6opts.Executors {
		cases := byExecutor[executor]
		if len(cases) == 0 {
			t.Errorf("no rule cases for %s", executor)
		}
		for _, tt := range cases {
			t.Run(executor+"/"+tt.name, func(t *testing.T) {
				fields := `"executor": "` + executor + `"`
				if tt.scenario != "" {
					fields += ", " + tt.scenario
				}
				doc := `{"scenarios": {"s": {` + fields + `}}}`
				err := k6opts.Validate([]byte(doc))
				var got []string
				var verr *k6opts.Error
				if errors.As(err, &verr) {
					for _, p := range verr.Problems {
						rel, ok := strings.CutPrefix(p.Path, "scenarios.s.")
						if !ok {
							t.Errorf("problem outside the scenario: %v", p)
						}
						got = append(got, rel)
					}
				} else if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("problems at %q, want %q\n%s: %v", got, tt.want, doc, err)
				}
				if tt.msg != "" && !strings.Contains(verr.Problems[0].Message, tt.msg) {
					t.Errorf("message %q, want it to contain %q", verr.Problems[0].Message, tt.msg)
				}
			})
		}
	}
}

func dur(s string) *k6opts.Duration {
	var d k6opts.Duration
	if err := d.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
		panic(err)
	}
	return &d
}

func num(n int64) *int64 { return &n }

// TestScenarioValidate: Scenario.Validate on typed scenarios, with paths
// relative to the scenario; what WithDefaults fills in is valid.
func TestScenarioValidate(t *testing.T) {
	tests := []struct {
		name string
		s    k6opts.Scenario
		want []string
	}{
		{"constant-arrival-rate", k6opts.Scenario{Executor: k6opts.ConstantArrivalRate, Rate: num(5), Duration: dur("1m"), PreAllocatedVUs: num(2)}, nil},
		{"constant-arrival-rate missing", k6opts.Scenario{Executor: k6opts.ConstantArrivalRate}, []string{"duration", "preAllocatedVUs", "rate"}},
		{"ramping-arrival-rate stages", k6opts.Scenario{Executor: k6opts.RampingArrivalRate, PreAllocatedVUs: num(1),
			Stages: []k6opts.Stage{{Duration: *dur("1s"), Target: 1}, {Duration: *dur("-1s"), Target: -2}}}, []string{"stages[1].duration", "stages[1].target"}},
		{"ramping-vus", k6opts.Scenario{Executor: k6opts.RampingVUs, StartVUs: num(0), Stages: []k6opts.Stage{{Duration: *dur("1s")}}}, []string{"stages"}},
		{"shared-iterations", k6opts.Scenario{Executor: k6opts.SharedIterations, VUs: num(4), Iterations: num(3)}, []string{"iterations"}},
		{"unknown executor", k6opts.Scenario{Executor: "closed"}, []string{"executor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			var got []string
			var verr *k6opts.Error
			if errors.As(err, &verr) {
				for _, p := range verr.Problems {
					got = append(got, p.Path)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems at %q, want %q: %v", got, tt.want, err)
			}
			if tt.want == nil {
				if err := tt.s.WithDefaults().Validate(); err != nil {
					t.Errorf("WithDefaults().Validate() = %v", err)
				}
			}
		})
	}
}

func TestShortcuts(t *testing.T) {
	tests := []struct {
		json string
		want k6opts.Scenario
	}{
		{`{}`, k6opts.Scenario{Executor: k6opts.PerVUIterations}},
		{`{"vus": 2, "iterations": 5, "duration": "1m"}`, k6opts.Scenario{Executor: k6opts.SharedIterations, VUs: num(2), Iterations: num(5), MaxDuration: dur("1m")}},
		{`{"vus": 2, "duration": "1m"}`, k6opts.Scenario{Executor: k6opts.ConstantVUs, VUs: num(2), Duration: dur("1m")}},
		{`{"vus": 2, "stages": [{"duration": "1m", "target": 3}]}`, k6opts.Scenario{Executor: k6opts.RampingVUs, StartVUs: num(2),
			Stages: []k6opts.Stage{{Duration: *dur("1m"), Target: 3}}}},
	}
	for _, tt := range tests {
		o, err := k6opts.Parse([]byte(tt.json))
		if err != nil {
			t.Fatalf("%s: %v", tt.json, err)
		}
		if got := o.Shortcuts(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Shortcuts() = %+v, want %+v", tt.json, got, tt.want)
		}
	}
}

// TestParseRoundTrip: what Parse decodes marshals back to options that
// parse to the same value.
func TestParseRoundTrip(t *testing.T) {
	doc := `{"scenarios": {"load": {"executor": "constant-arrival-rate", "rate": 10, "timeUnit": "1m", "duration": "1m30s",
		"preAllocatedVUs": 2, "maxVUs": 4, "startTime": "0s", "gracefulStop": "5s", "exec": "default", "tags": {"a": "b"}}},
		"thresholds": {"http_req_duration{phase:fault}": ["p(99)<300", {"threshold": "p(95)<200", "abortOnFail": true, "delayAbortEval": "10s"}]},
		"summaryTrendStats": ["avg", "p(99)"], "tlsVersion": {"min": "tls1.2", "max": "tls1.3"}, "dns": {"ttl": "1m", "select": "first"},
		"hosts": {"a.test": "127.0.0.1"}, "noConnectionReuse": true, "batch": 3, "setupTimeout": "10s"}`
	first, err := k6opts.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(first); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if strings.Contains(string(b), `\u003c`) {
		t.Errorf("thresholds are HTML-escaped: %s", b)
	}
	second, err := k6opts.Parse(b)
	if err != nil {
		t.Fatalf("re-parsing %s: %v", b, err)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("round trip differs:\n%+v\n%+v", first, second)
	}
	th := first.Thresholds["http_req_duration{phase:fault}"]
	if len(th) != 2 || th[0].Threshold != "p(99)<300" || th[0].AbortOnFail || !th[1].AbortOnFail || th[1].DelayAbortEval.String() != "10s" {
		t.Errorf("thresholds decoded as %+v", th)
	}
	// Through encoding/json too.
	var third k6opts.Options
	if err := json.Unmarshal(b, &third); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*first, third) {
		t.Errorf("encoding/json decodes differently:\n%+v\n%+v", *first, third)
	}
}

func TestParseExpression(t *testing.T) {
	tests := []struct {
		in   string
		want k6opts.Expression
		err  string
	}{
		{"p(99)<300", k6opts.Expression{Aggregation: "p", Percentile: 99, Operator: "<", Value: 300}, ""},
		{" p(99.9) >= 1.5 ", k6opts.Expression{Aggregation: "p", Percentile: 99.9, Operator: ">=", Value: 1.5}, ""},
		{"count===0", k6opts.Expression{Aggregation: "count", Operator: "===", Value: 0}, ""},
		{"rate!=-1", k6opts.Expression{Aggregation: "rate", Operator: "!=", Value: -1}, ""},
		{"med<=2e2", k6opts.Expression{Aggregation: "med", Operator: "<=", Value: 200}, ""},
		{"value==5", k6opts.Expression{Aggregation: "value", Operator: "==", Value: 5}, ""},
		{"", k6opts.Expression{}, "no aggregation"},
		{"avg", k6opts.Expression{}, "no operator"},
		{"avg=1", k6opts.Expression{}, "no operator"},
		{"avg<", k6opts.Expression{}, "not a number"},
		{"avg<Inf", k6opts.Expression{}, "not a number"},
		{"p(99<1", k6opts.Expression{}, "closing parenthesis"},
		{"p(-1)<1", k6opts.Expression{}, "from 0 to 100"},
		{"p(NaN)<1", k6opts.Expression{}, "from 0 to 100"},
		{"mean<1", k6opts.Expression{}, "no aggregation"},
	}
	for _, tt := range tests {
		got, err := k6opts.ParseExpression(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseExpression(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseExpression(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseMetricName(t *testing.T) {
	tests := []struct {
		in     string
		metric string
		tags   []k6opts.Tag
		bad    bool
	}{
		{"http_reqs", "http_reqs", nil, false},
		{"http_reqs{phase:fault}", "http_reqs", []k6opts.Tag{{"phase", "fault"}}, false},
		{"group_duration{group:::a}", "group_duration", []k6opts.Tag{{"group", "::a"}}, false},
		{"x{ a : 'b' , c:\"d\"}", "x", []k6opts.Tag{{"a", "b"}, {"c", "d"}}, false},
		{"x{}", "", nil, true},
		{"x{ }", "", nil, true},
		{"x{a}", "", nil, true},
		{"x{a:b", "", nil, true},
		{"x}", "", nil, true},
		{"x{a:b}{c:d}", "", nil, true},
	}
	for _, tt := range tests {
		metric, tags, err := k6opts.ParseMetricName(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseMetricName(%q) = %q %v, want an error", tt.in, metric, tags)
			}
			continue
		}
		if err != nil || metric != tt.metric || !reflect.DeepEqual(tags, tt.tags) {
			t.Errorf("ParseMetricName(%q) = %q %v %v, want %q %v", tt.in, metric, tags, err, tt.metric, tt.tags)
		}
	}
}

func TestErrorUnwrapsThresholdErrors(t *testing.T) {
	err := k6opts.Validate([]byte(`{"thresholds": {"http_reqs": ["p(99)<300"]}}`))
	if !errors.Is(err, k6opts.ErrInvalidThreshold) {
		t.Fatalf("errors.Is(%v, ErrInvalidThreshold) = false", err)
	}
	err = k6opts.Validate([]byte(`{"vus": 0, "duration": "1s"}`))
	if err == nil || errors.Is(err, k6opts.ErrInvalidThreshold) {
		t.Fatalf("a scenario problem %v unwraps to ErrInvalidThreshold", err)
	}
}

func TestMetricTypes(t *testing.T) {
	for name, want := range map[string]k6opts.MetricType{
		"http_reqs": k6opts.Counter, "http_req_failed": k6opts.Rate, "http_req_duration": k6opts.Trend, "checks": k6opts.Rate,
		"iterations": k6opts.Counter, "iteration_duration": k6opts.Trend, "vus": k6opts.Gauge, "vus_max": k6opts.Gauge,
		"data_sent": k6opts.Counter, "data_received": k6opts.Counter, "dropped_iterations": k6opts.Counter,
		"http_req_waiting": k6opts.Trend, "group_duration": k6opts.Trend, "grpc_req_duration": k6opts.Trend,
	} {
		if got, ok := k6opts.BuiltinMetric(name); !ok || got != want {
			t.Errorf("BuiltinMetric(%q) = %v %v, want %v", name, got, ok, want)
		}
	}
	if _, ok := k6opts.BuiltinMetric("http_req_durations"); ok {
		t.Error("BuiltinMetric knows http_req_durations")
	}
	if got := k6opts.Trend.String(); got != "trend" {
		t.Errorf("Trend.String() = %q", got)
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
		{[]string{"blacklistIPs", "1"}, "blacklistIPs[1]"},
	}
	for _, tt := range tests {
		if got := k6opts.FormatPath(tt.keys); got != tt.want {
			t.Errorf("FormatPath(%q) = %q, want %q", tt.keys, got, tt.want)
		}
	}
}

// TestFields: a scenario takes exactly the fields Fields and CommonFields
// list for its executor; any other executor's field is reported at that
// field.
func TestFields(t *testing.T) {
	value := map[string]string{
		"rate": "5", "startRate": "1", "timeUnit": `"1s"`, "duration": `"10s"`,
		"stages": `[{"duration": "10s", "target": 2}]`, "preAllocatedVUs": "2", "maxVUs": "3",
		"vus": "2", "startVUs": "1", "iterations": "4", "maxDuration": `"1m"`, "gracefulRampDown": `"1s"`,
		"startTime": `"0s"`, "gracefulStop": `"1s"`, "exec": `"default"`, "env": `{"A": "1"}`, "tags": `{"t": "v"}`,
	}
	valid := map[string]string{
		k6opts.ConstantArrivalRate: `"rate": 5, "duration": "10s", "preAllocatedVUs": 2`,
		k6opts.RampingArrivalRate:  `"preAllocatedVUs": 2, "stages": [{"duration": "10s", "target": 2}]`,
		k6opts.ConstantVUs:         `"duration": "10s"`,
		k6opts.RampingVUs:          `"stages": [{"duration": "10s", "target": 2}]`,
		k6opts.PerVUIterations:     `"iterations": 4`,
		k6opts.SharedIterations:    `"iterations": 4`,
	}
	all := map[string]bool{}
	for _, e := range k6opts.Executors {
		for _, f := range k6opts.Fields(e) {
			all[f] = true
		}
	}
	for _, e := range k6opts.Executors {
		takes := map[string]bool{}
		for _, f := range append(k6opts.Fields(e), k6opts.CommonFields...) {
			takes[f] = true
		}
		for f := range all {
			if _, ok := value[f]; !ok {
				t.Fatalf("no test value for %s", f)
			}
			doc := scenarioWith(t, e, valid[e], f, value[f])
			err := k6opts.Validate([]byte(doc))
			if takes[f] && err != nil {
				t.Errorf("%s with %s: %v", e, f, err)
			}
			if !takes[f] {
				var verr *k6opts.Error
				if !errors.As(err, &verr) || len(verr.Problems) != 1 || verr.Problems[0].Path != "scenarios.s."+f {
					t.Errorf("%s with %s: %v, want one problem at the field", e, f, err)
				}
			}
		}
		for _, f := range k6opts.CommonFields[1:] {
			doc := scenarioWith(t, e, valid[e], f, value[f])
			if err := k6opts.Validate([]byte(doc), k6opts.WithExports("default")); err != nil {
				t.Errorf("%s with %s: %v", e, f, err)
			}
		}
	}
	if k6opts.Fields("externally-controlled") != nil {
		t.Error("Fields knows externally-controlled")
	}
}

// scenarioWith writes options with one scenario "s": the executor, the
// fields of base (JSON object members), and field set to value.
func scenarioWith(t *testing.T, executor, base, field, value string) string {
	t.Helper()
	var sc map[string]json.RawMessage
	if err := json.Unmarshal([]byte("{"+base+"}"), &sc); err != nil {
		t.Fatal(err)
	}
	sc["executor"] = json.RawMessage(`"` + executor + `"`)
	sc[field] = json.RawMessage(value)
	b, err := json.Marshal(map[string]any{"scenarios": map[string]any{"s": sc}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
