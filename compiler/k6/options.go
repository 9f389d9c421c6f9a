package k6

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"faultline.dev/faultline/compiler/k6opts"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/schema"
)

// Load is the compiled load: the options' one scenario and the request
// mix, as script.js carries them. faultline's own engine runs exactly
// this, so what runs locally is what k6 runs from the same script.
type Load struct {
	// Scenario is options.scenarios.load, every parameter its executor
	// uses stated (k6's defaults filled in).
	Scenario k6opts.Scenario
	// Requests is the script's request mix, in the scenario's order.
	Requests []Request
	// GRPC is where the gRPC calls of the mix go; nil when there are none.
	GRPC *GRPCTarget
}

// GRPCTarget is target.grpc and how its methods are described.
type GRPCTarget struct {
	// Address is host:port.
	Address string `json:"address"`
	// TLS: plaintext when false.
	TLS bool `json:"tls"`
	// ProtoFiles and ImportPaths describe the services; without files the
	// descriptors come from the server's reflection service.
	ProtoFiles  []string `json:"protoFiles"`
	ImportPaths []string `json:"importPaths"`
}

// GRPCCall is a gRPC request of the mix: the method's full name
// ("package.Service/Method"), the message in protobuf's JSON mapping, the
// metadata.
type GRPCCall struct {
	Method   string            `json:"method"`
	Message  map[string]any    `json:"message"`
	Metadata map[string]string `json:"metadata"`
}

// Request is one entry of the script's request mix (the JSON the script
// embeds).
type Request struct {
	Name    string            `json:"name"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    *string           `json:"body"`
	Weight  int               `json:"weight"`
	// Status is the expected status; 0 means any 2xx or 3xx.
	Status       int      `json:"status"`
	BodyContains []string `json:"bodyContains"`
	// CheckNames name the checks: status first, then one per bodyContains.
	CheckNames []string `json:"checkNames"`
	// GRPC is set when the request is a gRPC call (URL, Path, Method,
	// Headers and Body are then empty); GRPCStatus is the status code it
	// expects (0, OK, by default).
	GRPC       *GRPCCall `json:"grpc,omitempty"`
	GRPCStatus int       `json:"grpcStatus,omitempty"`
}

// CompileLoad compiles a plan's load as Emit writes it into the script
// and options. It validates the options as Emit does (an *Error lists what
// k6 would reject). The result shares nothing with the plan.
func CompileLoad(p *plan.Plan) (*Load, error) {
	c, err := compile(p)
	if err != nil {
		return nil, err
	}
	l := c.load
	return &l, nil
}

// loadScenario makes the k6 scenario of the load section: the parameters
// the scenario sets, then k6's defaults for the rest, so that the options
// state what runs.
func loadScenario(l schema.Load) (k6opts.Scenario, error) {
	i64 := func(n int) *int64 { v := int64(n); return &v }
	d := func(v schema.Duration) *k6opts.Duration { x := k6opts.Duration(v); return &x }
	// Zero means unset for these schema fields.
	setInt := func(n int) *int64 {
		if n == 0 {
			return nil
		}
		return i64(n)
	}
	setDur := func(v schema.Duration) *k6opts.Duration {
		if v == 0 {
			return nil
		}
		return d(v)
	}
	sc := k6opts.Scenario{Executor: l.Executor, Exec: k6opts.DefaultExec}
	if l.GracefulStop != nil {
		sc.GracefulStop = d(*l.GracefulStop)
	}
	stages := make([]k6opts.Stage, len(l.Stages))
	for i, s := range l.Stages {
		stages[i] = k6opts.Stage{Duration: k6opts.Duration(s.Duration), Target: int64(s.Target)}
	}
	switch l.Executor {
	case schema.ConstantArrivalRate:
		sc.Rate, sc.TimeUnit, sc.Duration = i64(l.Rate), setDur(l.TimeUnit), d(l.Duration)
		sc.PreAllocatedVUs, sc.MaxVUs = i64(l.PreAllocatedVUs), setInt(l.MaxVUs)
	case schema.RampingArrivalRate:
		if l.StartRate != nil {
			sc.StartRate = i64(*l.StartRate)
		}
		sc.TimeUnit, sc.Stages = setDur(l.TimeUnit), stages
		sc.PreAllocatedVUs, sc.MaxVUs = i64(l.PreAllocatedVUs), setInt(l.MaxVUs)
	case schema.ConstantVUs:
		sc.VUs, sc.Duration = setInt(l.VUs), d(l.Duration)
	case schema.RampingVUs:
		if l.StartVUs != nil {
			sc.StartVUs = i64(*l.StartVUs)
		}
		sc.Stages = stages
		if l.GracefulRampDown != nil {
			sc.GracefulRampDown = d(*l.GracefulRampDown)
		}
	case schema.PerVUIterations, schema.SharedIterations:
		sc.VUs, sc.Iterations, sc.MaxDuration = setInt(l.VUs), setInt(l.Iterations), setDur(l.MaxDuration)
	default:
		return sc, fmt.Errorf("unknown executor %q", l.Executor)
	}
	return sc.WithDefaults(), nil
}

// requests makes the request mix: names, methods, weights and checks
// resolved, every URL on target.url. Maps and lists are copies.
func (c *compilation) requests() []Request {
	base := strings.TrimSuffix(c.s.Target.URL, "/")
	out := make([]Request, 0, len(c.s.Load.Requests))
	for _, r := range c.s.Load.Requests {
		if r.GRPC != nil {
			out = append(out, grpcRequest(r))
			continue
		}
		q := Request{
			Name: r.Name, Method: r.Method, URL: base + r.Path, Path: r.Path, Headers: maps.Clone(r.Headers),
			Weight: r.Weight, BodyContains: []string{},
		}
		if r.Body != nil {
			body := *r.Body
			q.Body = &body
		}
		if q.Method == "" {
			q.Method = "GET"
		}
		if q.Name == "" {
			q.Name = q.Method + " " + r.Path
		}
		if q.Headers == nil {
			q.Headers = map[string]string{}
		}
		if q.Weight == 0 {
			q.Weight = 1
		}
		status := "status is 2xx or 3xx"
		if r.Expect != nil {
			q.Status = r.Expect.Status
			if q.Status != 0 {
				status = fmt.Sprintf("status is %d", q.Status)
			}
			if r.Expect.BodyContains != nil {
				q.BodyContains = slices.Clone(r.Expect.BodyContains)
			}
		}
		q.CheckNames = append(q.CheckNames, q.Name+": "+status)
		for _, s := range q.BodyContains {
			q.CheckNames = append(q.CheckNames, q.Name+": body contains "+s)
		}
		out = append(out, q)
	}
	return out
}

// grpcRequest compiles a gRPC call of the mix: named for its method by
// default, one check (the status).
func grpcRequest(r schema.Request) Request {
	q := Request{Name: r.Name, Weight: r.Weight, Headers: map[string]string{}, BodyContains: []string{},
		GRPC: &GRPCCall{Method: r.GRPC.Method, Message: maps.Clone(r.GRPC.Message), Metadata: maps.Clone(r.GRPC.Metadata)}}
	if q.Name == "" {
		q.Name = r.GRPC.Method
	}
	if q.Weight == 0 {
		q.Weight = 1
	}
	if q.GRPC.Message == nil {
		q.GRPC.Message = map[string]any{}
	}
	if q.GRPC.Metadata == nil {
		q.GRPC.Metadata = map[string]string{}
	}
	if r.Expect != nil && r.Expect.GRPCStatus != nil {
		// vet has checked the code; an unknown one expects UNKNOWN, never OK.
		code, err := r.Expect.GRPCStatus.Code()
		if err != nil {
			code = 2
		}
		q.GRPCStatus = code
	}
	q.CheckNames = []string{q.Name + ": status is " + schema.GRPCCodeName(q.GRPCStatus)}
	return q
}

// grpcTarget is the load's gRPC target, or nil when no request is a call.
func (c *compilation) grpcTarget() *GRPCTarget {
	for _, r := range c.s.Load.Requests {
		if r.GRPC == nil {
			continue
		}
		t := &GRPCTarget{Address: c.s.Target.GRPC, TLS: c.s.Target.GRPCTLS, ProtoFiles: []string{}, ImportPaths: []string{}}
		if p := c.s.Target.Protos; p != nil {
			t.ProtoFiles, t.ImportPaths = slices.Clone(p.Files), slices.Clone(p.ImportPaths)
			if t.ImportPaths == nil {
				t.ImportPaths = []string{}
			}
		}
		return t
	}
	return nil
}
