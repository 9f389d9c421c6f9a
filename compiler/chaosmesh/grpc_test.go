package chaosmesh

import (
	"errors"
	"strings"
	"testing"

	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

// TestGRPCFaultRefused: Chaos Mesh has no gRPC fault, so a grpcFault is
// refused at its path, naming why and what to do instead; the scenario's
// other faults still compile.
func TestGRPCFaultRefused(t *testing.T) {
	s := scenario(map[string]schema.Fault{
		"fail":   {Duration: dur("1m"), GRPCFault: &schema.GRPCFault{Abort: ptrTo(schema.GRPCStatus("UNAVAILABLE"))}},
		"jitter": {Duration: dur("1m"), NetworkDelay: &schema.NetworkDelay{Latency: dur("10ms")}},
	})
	p, err := plan.New(s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Emit(p)
	var se *ScenarioError
	if !errors.As(err, &se) || se.HasBug() || len(se.Findings) != 1 || se.Findings[0].Path != "faults.fail.grpcFault" ||
		!strings.Contains(se.Findings[0].Message, "Chaos Mesh has no gRPC fault") || !strings.Contains(se.Findings[0].Message, "--backend local") {
		t.Fatalf("err = %v, want one finding at faults.fail.grpcFault", err)
	}
}

func ptrTo[T any](v T) *T { return &v }
