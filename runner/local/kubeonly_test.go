package local

import (
	"strings"
	"testing"

	"faultline.dev/faultline/schema"
)

// TestKubernetesOnly: a fault with a field only Chaos Mesh acts on is
// refused up front, naming each such field and the kubernetes backend; a
// fault the local backend runs whole is not.
func TestKubernetesOnly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault schema.Fault
		want  string // "" when the local backend runs it
	}{
		{"plain delay", schema.Fault{NetworkDelay: &schema.NetworkDelay{Latency: schema.Duration(1e7)}}, ""},
		{"http abort", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "request", Port: 80, Abort: true}}, ""},
		{"http headers, replace and patch", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "request", Port: 80,
			RequestHeaders: map[string]string{"X-Canary": "true"}, Replace: &schema.HTTPReplace{Path: "/v2", Method: "PUT", Queries: map[string]string{"a": "1"}},
			Patch: &schema.HTTPPatch{Headers: [][]string{{"X", "1"}}}}}, ""},
		{"http tls", schema.Fault{HTTPFault: &schema.HTTPFault{Target: "request", Port: 443, Abort: true, TLS: &schema.HTTPTLS{SecretName: "c", CertName: "tls.crt", KeyName: "tls.key"}}}, "httpFault.tls"},
		{"netem delay, loss and rate", schema.Fault{Netem: &schema.Netem{Delay: &schema.NetemDelay{Latency: schema.Duration(1e7)}, Loss: &schema.NetemLoss{Loss: 5}, Rate: "1mbps"}}, ""},
		{"netem duplicate and corrupt", schema.Fault{Netem: &schema.Netem{Duplicate: &schema.NetemDuplicate{Duplicate: 1}, Corrupt: &schema.NetemCorrupt{Corrupt: 1}}}, "netem.duplicate, netem.corrupt"},
		{"ioMistake", schema.Fault{IOMistake: &schema.IOMistake{Filling: "zero"}}, "ioMistake"},
		{"selector and reorder", schema.Fault{Selector: &schema.Selector{Nodes: []string{"n1"}},
			NetworkDelay: &schema.NetworkDelay{Latency: schema.Duration(1e7), Reorder: &schema.Reorder{Reorder: 10}}}, "selector.nodes, networkDelay.reorder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := kubernetesOnly(tc.fault)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "cannot act on "+tc.want+" (") || !strings.Contains(err.Error(), "--backend kubernetes") {
				t.Errorf("err = %v, want it to name %s and the kubernetes backend", err, tc.want)
			}
		})
	}
}
