package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"faultline.dev/faultline/e2e/harness"
)

// effect is how the recording daemon shows that a fault kind was injected and recovered on
// one target container: the gRPC method Chaos Mesh's controller calls, and what the request
// holds (the real daemon applies the request's state; recovery is the same call with the state
// emptied, or a method of its own).
type effect struct {
	inject, recover     string
	injected, recovered func(req map[string]any) bool
}

func nonEmpty(key string) func(map[string]any) bool {
	return func(req map[string]any) bool { return !empty(req[key]) }
}

func emptied(key string) func(map[string]any) bool {
	return func(req map[string]any) bool { return empty(req[key]) }
}

func always(map[string]any) bool { return true }

// empty: absent, null, "", "[]", [] or {}.
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == "" || v == "[]" || v == "null"
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	case bool:
		return !v
	}
	return false
}

// effects, per fault kind the library's cluster scenarios use (podKill has no daemon call:
// the controller deletes the pod itself).
var effects = map[string]effect{
	"networkDelay":     {"SetTcs", "SetTcs", nonEmpty("tcs"), emptied("tcs")},
	"networkLoss":      {"SetTcs", "SetTcs", nonEmpty("tcs"), emptied("tcs")},
	"networkPartition": {"SetIptablesChains", "SetIptablesChains", nonEmpty("chains"), emptied("chains")},
	"timeSkew":         {"SetTimeOffset", "RecoverTimeOffset", always, always},
	"cpuStress":        {"ExecStressors", "CancelStressors", nonEmpty("cpuStressors"), always},
	"memoryStress":     {"ExecStressors", "CancelStressors", nonEmpty("memoryStressors"), always},
	"ioLatency":        {"ApplyIOChaos", "ApplyIOChaos", nonEmpty("actions"), emptied("actions")},
	"httpFault":        {"ApplyHttpChaos", "ApplyHttpChaos", nonEmpty("rules"), emptied("rules")},
	"dnsFault":         {"SetDNSServer", "SetDNSServer", nonEmpty("enable"), emptied("enable")},
}

// seen is what the daemon saw for one container during a run.
type seen struct {
	injectedAt, recoveredAt time.Time
	calls                   []string
}

// daemonSaw finds, for each container ID, the first injecting call and the first recovering
// call after it.
func daemonSaw(calls []harness.Call, e effect, containerIDs []string) (map[string]*seen, error) {
	out := map[string]*seen{}
	for _, id := range containerIDs {
		out[id] = &seen{}
	}
	for _, c := range calls {
		var req map[string]any
		if err := json.Unmarshal(c.Request, &req); err != nil {
			return nil, fmt.Errorf("call %d %s: %w", c.Seq, c.Method, err)
		}
		for _, id := range containerIDs {
			if !strings.Contains(string(c.Request), strings.TrimPrefix(id, "containerd://")) {
				continue
			}
			s := out[id]
			s.calls = append(s.calls, c.Method)
			if c.Error != "" {
				continue
			}
			switch {
			case s.injectedAt.IsZero() && c.Method == e.inject && e.injected(req):
				s.injectedAt = c.Time
			case !s.injectedAt.IsZero() && s.recoveredAt.IsZero() && c.Method == e.recover && e.recovered(req):
				s.recoveredAt = c.Time
			}
		}
	}
	return out, nil
}
