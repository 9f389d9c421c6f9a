package kubetestctl

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"

	"k8s.io/client-go/rest"
)

// AccessReviews is a TEST STAND-IN for a real API server's authorization API, which the test
// server (CRDs only) lacks: a loopback HTTP proxy in front of the test server that answers
// POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews itself, as kube-apiserver does —
// 422 unless metadata is empty (ValidateSelfSubjectAccessReview: "metadata ... must be empty"),
// 422 without spec.resourceAttributes, else 201 with status.allowed from Allow — and forwards
// everything else. Reviews records what was asked.
type AccessReviews struct {
	// Allow decides a review from its resourceAttributes (namespace, verb, group, resource, ...).
	Allow func(attrs map[string]string) (allowed bool, reason string)

	mu      sync.Mutex
	reviews []map[string]string
}

// Reviews are the resourceAttributes of every review answered, in order.
func (a *AccessReviews) Reviews() []map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]map[string]string(nil), a.reviews...)
}

// Start serves the proxy in front of upstream and returns a client configuration for it; stop
// closes it.
func (a *AccessReviews) Start(upstream *rest.Config) (cfg *rest.Config, stop func(), err error) {
	target, err := url.Parse(upstream.Host)
	if err != nil {
		return nil, nil, err
	}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = transport
	proxy.FlushInterval = -1 // watches stream
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews", a.review)
	mux.Handle("/", proxy)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	cfg = &rest.Config{Host: "http://" + ln.Addr().String(), QPS: upstream.QPS, Burst: upstream.Burst}
	return cfg, func() { _ = srv.Close() }, nil
}

func (a *AccessReviews) review(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req struct {
		Metadata map[string]any `json:"metadata"`
		Spec     struct {
			ResourceAttributes map[string]string `json:"resourceAttributes"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		status(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	delete(req.Metadata, "creationTimestamp") // null when a typed client sends an empty ObjectMeta
	if len(req.Metadata) > 0 {
		m, _ := json.Marshal(req.Metadata)
		status(w, http.StatusUnprocessableEntity, "Invalid", fmt.Sprintf(`SelfSubjectAccessReview.authorization.k8s.io "" is invalid: metadata: Invalid value: %s: must be empty`, m))
		return
	}
	if req.Spec.ResourceAttributes == nil {
		status(w, http.StatusUnprocessableEntity, "Invalid", `SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified`)
		return
	}
	a.mu.Lock()
	a.reviews = append(a.reviews, req.Spec.ResourceAttributes)
	a.mu.Unlock()
	allowed, reason := true, ""
	if a.Allow != nil {
		allowed, reason = a.Allow(req.Spec.ResourceAttributes)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
		"metadata": map[string]any{"creationTimestamp": nil},
		"spec":     map[string]any{"resourceAttributes": req.Spec.ResourceAttributes},
		"status":   map[string]any{"allowed": allowed, "reason": reason},
	})
}

func status(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"message": msg, "reason": reason, "code": code})
}
