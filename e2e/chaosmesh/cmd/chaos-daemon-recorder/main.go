// Command chaos-daemon-recorder is a TEST STAND-IN for Chaos Mesh's chaos-daemon (and for the
// gRPC side of its DNS server, chaos-mesh/k8s_dns_chaos), used only by faultline's e2e harness.
//
// The real chaos-daemon runs privileged on every node and enters the target containers'
// namespaces to run tc, ipset, iptables, stress-ng, toda and tproxy. Nothing of that can run
// here: there is no kubelet, no container runtime and no netem. The recorder serves the same
// gRPC service the controller-manager calls (pb.ChaosDaemon from github.com/chaos-mesh/chaos-mesh
// pkg/chaosdaemon/pb, and pb.DNS from github.com/chaos-mesh/k8s_dns_chaos), so the real
// controller-manager runs its real code paths, and it
//
//   - records every call: method, request (as JSON), time, the error it returned;
//   - answers like the daemon does on success (an instance id and start time where the
//     response carries one; HTTP chaos answers status 200), without touching anything;
//   - can be told to delay or fail calls (rules), to test what faultline does when an
//     injection never takes effect or hangs.
//
// The calls and rules are served over HTTP on loopback for the tests:
//
//	GET  /calls      every recorded call, oldest first (JSON array of Call)
//	PUT  /rules      replace the rules (JSON array of Rule)
//	GET  /healthz    200 once serving
//
// It listens on loopback addresses only and refuses any other.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang/protobuf/ptypes/empty"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chaos-mesh/chaos-mesh/pkg/chaosdaemon/pb"
	dnspb "github.com/chaos-mesh/k8s_dns_chaos/pb"
)

// Call is one recorded gRPC call.
type Call struct {
	Seq     int             `json:"seq"`
	Time    time.Time       `json:"time"`
	Method  string          `json:"method"` // short name: "SetTcs", "SetDNSChaos", ...
	Request json.RawMessage `json:"request"`
	Error   string          `json:"error,omitempty"` // what the recorder answered, "" for success
	Delayed string          `json:"delayed,omitempty"`
}

// Rule delays or fails the calls it matches.
type Rule struct {
	Method string `json:"method"`          // short method name; required
	Match  string `json:"match,omitempty"` // a substring of the request's JSON, "" for any
	Delay  string `json:"delay,omitempty"` // a Go duration to wait before answering
	Fail   string `json:"fail,omitempty"`  // answer this error (gRPC Internal) instead of success
	Times  int    `json:"times,omitempty"` // apply to this many matching calls, 0 for all
	used   int
	delay  time.Duration
}

// maxDelay bounds a rule's delay.
const maxDelay = 5 * time.Minute

// maxCalls bounds the record.
const maxCalls = 100000

type recorder struct {
	mu    sync.Mutex
	calls []Call
	rules []*Rule
	seq   int
}

func (r *recorder) setRules(rules []*Rule) error {
	for i, ru := range rules {
		if ru.Method == "" {
			return fmt.Errorf("rule %d: method is required", i)
		}
		if ru.Delay != "" {
			d, err := time.ParseDuration(ru.Delay)
			if err != nil || d < 0 || d > maxDelay {
				return fmt.Errorf("rule %d: delay %q: want a duration between 0 and %s", i, ru.Delay, maxDelay)
			}
			ru.delay = d
		}
		if ru.Times < 0 {
			return fmt.Errorf("rule %d: times %d is negative", i, ru.Times)
		}
	}
	r.mu.Lock()
	r.rules = rules
	r.mu.Unlock()
	return nil
}

// rule returns the first rule matching a call and counts its use.
func (r *recorder) rule(method string, req []byte) *Rule {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ru := range r.rules {
		if ru.Method != method || (ru.Match != "" && !strings.Contains(string(req), ru.Match)) {
			continue
		}
		if ru.Times > 0 && ru.used >= ru.Times {
			continue
		}
		ru.used++
		c := *ru
		return &c
	}
	return nil
}

func (r *recorder) record(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	c.Seq = r.seq
	if len(r.calls) < maxCalls {
		r.calls = append(r.calls, c)
	}
}

// intercept records every unary call and applies the rules before the handler answers.
func (r *recorder) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	body, err := json.Marshal(req)
	if err != nil {
		body = []byte(fmt.Sprintf("%q", fmt.Sprint(req)))
	}
	c := Call{Time: time.Now().UTC(), Method: method, Request: body}
	ru := r.rule(method, body)
	if ru != nil && ru.delay > 0 {
		c.Delayed = ru.delay.String()
		t := time.NewTimer(ru.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			c.Error = "cancelled by the caller during the delay: " + ctx.Err().Error()
			r.record(c)
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if ru != nil && ru.Fail != "" {
		c.Error = ru.Fail
		r.record(c)
		return nil, status.Error(codes.Internal, ru.Fail)
	}
	resp, err := handler(ctx, req)
	if err != nil {
		c.Error = err.Error()
	}
	r.record(c)
	return resp, err
}

// daemon answers pb.ChaosDaemon as the real daemon does on success, changing nothing.
type daemon struct {
	pb.UnimplementedChaosDaemonServer
}

func nowMillis() int64 { return time.Now().UnixMilli() }

func (daemon) SetTcs(context.Context, *pb.TcsRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}
func (daemon) FlushIPSets(context.Context, *pb.IPSetsRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}
func (daemon) SetIptablesChains(context.Context, *pb.IptablesChainsRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}
func (daemon) SetTimeOffset(context.Context, *pb.TimeRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}
func (daemon) RecoverTimeOffset(context.Context, *pb.TimeRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}
func (daemon) ContainerKill(context.Context, *pb.ContainerRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}

// ContainerGetPid answers the recorder's own pid (the real daemon answers the container's).
func (daemon) ContainerGetPid(context.Context, *pb.ContainerRequest) (*pb.ContainerResponse, error) {
	return &pb.ContainerResponse{Pid: uint32(os.Getpid())}, nil
}

// ExecStressors answers instance ids that carry the target container's id, so that the
// CancelStressors call that recovers it (which names only the instances) can be told apart.
func (daemon) ExecStressors(_ context.Context, req *pb.ExecStressRequest) (*pb.ExecStressResponse, error) {
	res := &pb.ExecStressResponse{}
	if req.CpuStressors != "" {
		id := "recorder-cpu:" + req.Target
		res.CpuInstance, res.CpuStartTime, res.CpuInstanceUid = id, nowMillis(), id
	}
	if req.MemoryStressors != "" {
		id := "recorder-memory:" + req.Target
		res.MemoryInstance, res.MemoryStartTime, res.MemoryInstanceUid = id, nowMillis(), id
	}
	return res, nil
}
func (daemon) CancelStressors(context.Context, *pb.CancelStressRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}
func (daemon) ApplyIOChaos(context.Context, *pb.ApplyIOChaosRequest) (*pb.ApplyIOChaosResponse, error) {
	return &pb.ApplyIOChaosResponse{Instance: int64(os.Getpid()), StartTime: nowMillis(), InstanceUid: "recorder-io"}, nil
}
func (daemon) ApplyHttpChaos(context.Context, *pb.ApplyHttpChaosRequest) (*pb.ApplyHttpChaosResponse, error) {
	return &pb.ApplyHttpChaosResponse{Instance: int64(os.Getpid()), StartTime: nowMillis(), StatusCode: http.StatusOK, InstanceUid: "recorder-http"}, nil
}
func (daemon) ApplyBlockChaos(context.Context, *pb.ApplyBlockChaosRequest) (*pb.ApplyBlockChaosResponse, error) {
	return &pb.ApplyBlockChaosResponse{InjectionId: 1}, nil
}
func (daemon) RecoverBlockChaos(context.Context, *pb.RecoverBlockChaosRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}
func (daemon) SetDNSServer(context.Context, *pb.SetDNSServerRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}
func (daemon) InstallJVMRules(context.Context, *pb.InstallJVMRulesRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}
func (daemon) UninstallJVMRules(context.Context, *pb.UninstallJVMRulesRequest) (*empty.Empty, error) {
	return &empty.Empty{}, nil
}

// dnsServer answers k8s_dns_chaos's pb.DNS (the rules the controller sets on Chaos Mesh's DNS
// server) with success.
type dnsServer struct{}

func (dnsServer) SetDNSChaos(context.Context, *dnspb.SetDNSChaosRequest) (*dnspb.DNSChaosResponse, error) {
	return &dnspb.DNSChaosResponse{Result: true}, nil
}
func (dnsServer) CancelDNSChaos(context.Context, *dnspb.CancelDNSChaosRequest) (*dnspb.DNSChaosResponse, error) {
	return &dnspb.DNSChaosResponse{Result: true}, nil
}

func (r *recorder) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		out, err := json.Marshal(r.calls)
		r.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if string(out) == "null" {
			out = []byte("[]")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
	mux.HandleFunc("PUT /rules", func(w http.ResponseWriter, req *http.Request) {
		var rules []*Rule
		dec := json.NewDecoder(io.LimitReader(req.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rules); err != nil {
			http.Error(w, "rules: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := r.setRules(rules); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// listenLoopback listens on addr, which must be a loopback address.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s: not a loopback address", addr)
	}
	return net.Listen("tcp", addr)
}

func run() error {
	daemonAddr := flag.String("daemon", "127.0.0.1:31767", "loopback address of the pb.ChaosDaemon gRPC service")
	dnsAddr := flag.String("dns", "", "loopback address of the pb.DNS gRPC service (Chaos Mesh's DNS server), empty for none")
	httpAddr := flag.String("http", "127.0.0.1:0", "loopback address of the HTTP endpoint (calls, rules)")
	flag.Parse()

	r := &recorder{}
	srv := grpc.NewServer(grpc.UnaryInterceptor(r.intercept))
	pb.RegisterChaosDaemonServer(srv, daemon{})
	dnspb.RegisterDNSServer(srv, dnsServer{})

	dl, err := listenLoopback(*daemonAddr)
	if err != nil {
		return err
	}
	hl, err := listenLoopback(*httpAddr)
	if err != nil {
		return err
	}
	errs := make(chan error, 3)
	go func() { errs <- srv.Serve(dl) }()
	if *dnsAddr != "" {
		nl, err := listenLoopback(*dnsAddr)
		if err != nil {
			return err
		}
		go func() { errs <- srv.Serve(nl) }()
	}
	hs := &http.Server{Handler: r.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { errs <- hs.Serve(hl) }()
	// The harness reads the addresses from this line.
	fmt.Printf("chaos-daemon-recorder: daemon %s dns %s http %s\n", dl.Addr(), *dnsAddr, hl.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Printf("chaos-daemon-recorder: %s", s)
	case err := <-errs:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return hs.Shutdown(ctx)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos-daemon-recorder:", err)
		os.Exit(1)
	}
}
