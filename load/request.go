package load

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"faultline.dev/faultline/compiler/k6"
)

// request is one entry of the mix, prepared once before the load starts:
// for plain http, the whole HTTP/1.1 request as bytes, written as is.
type request struct {
	idx      int
	method   string
	url      string
	scheme   string
	hostport string
	host     string // the Host header
	header   http.Header
	body     []byte
	hasBody  bool
	raw      []byte
	noBody   bool // HEAD: the response has no body
	status   int  // the expected status; 0 means 200-399
	contains [][]byte
	weight   int
	grpc     *grpcCall // a gRPC call: the HTTP fields are unused
}

// grpcCalls lists the mix's gRPC calls.
func (m *mix) grpcCalls() []*grpcCall {
	var out []*grpcCall
	for _, r := range m.reqs {
		if r.grpc != nil {
			out = append(out, r.grpc)
		}
	}
	return out
}

// expected reports whether a status is what the request expects: k6's
// http_req_failed is false exactly for these.
func (r *request) expected(status int) bool {
	if r.status != 0 {
		return status == r.status
	}
	return status >= 200 && status < 400
}

// replayable reports a request Go's client would send again after a
// stale keep-alive connection failed: an idempotent method, no body.
func (r *request) replayable() bool {
	switch r.method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return !r.hasBody
	}
	return false
}

// checks counts the checks a response passes: the status check, then one
// per bodyContains.
func (r *request) checks(status int, body []byte) (passed, total int) {
	total = 1 + len(r.contains)
	if r.expected(status) {
		passed++
	}
	for _, c := range r.contains {
		if status != 0 && bytes.Contains(body, c) {
			passed++
		}
	}
	return passed, total
}

// mix picks requests by weight.
type mix struct {
	reqs  []*request
	cum   []int
	total int
}

func (m *mix) pick(r *rand.Rand) *request {
	if len(m.reqs) == 1 {
		return m.reqs[0]
	}
	n := r.IntN(m.total)
	i, _ := slices.BinarySearch(m.cum, n+1)
	return m.reqs[i]
}

// newMix prepares the requests. base, when set, replaces the scheme and
// host of every request's URL (as the script does with FAULTLINE_TARGET_URL);
// the paths stay the scenario's.
func newMix(reqs []k6.Request, base, userAgent string) (*mix, error) {
	if len(reqs) == 0 {
		return nil, fmt.Errorf("the load has no requests")
	}
	m := &mix{}
	base = strings.TrimSuffix(base, "/")
	for i, q := range reqs {
		if q.GRPC != nil {
			c, err := newGRPCCall(q)
			if err != nil {
				return nil, fmt.Errorf("request %d (%s): %w", i, q.Name, err)
			}
			r := &request{idx: i, grpc: c, weight: max(q.Weight, 1)}
			m.reqs = append(m.reqs, r)
			m.total += r.weight
			m.cum = append(m.cum, m.total)
			continue
		}
		raw := q.URL
		if base != "" {
			raw = base + q.Path
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("request %d (%s): %w", i, q.Name, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("request %d (%s): %s: only http and https URLs can be loaded", i, q.Name, raw)
		}
		method := q.Method
		if method == "" {
			method = http.MethodGet
		}
		r := &request{idx: i, method: method, url: u.String(), scheme: u.Scheme, host: u.Host, status: q.Status,
			header: http.Header{}, noBody: method == http.MethodHead, weight: max(q.Weight, 1)}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		r.hostport = net.JoinHostPort(u.Hostname(), port)
		for k, v := range q.Headers {
			if strings.ContainsAny(k, "\r\n:\x00 ") || strings.ContainsAny(v, "\r\n\x00") {
				return nil, fmt.Errorf("request %d (%s): header %q: a header name or value cannot hold a line break, NUL or (in the name) a colon or space", i, q.Name, k)
			}
			if strings.EqualFold(k, "Host") {
				r.host = v
				continue
			}
			r.header.Set(k, v)
		}
		if r.header.Get("User-Agent") == "" {
			r.header.Set("User-Agent", userAgent)
		}
		if q.Body != nil {
			r.body, r.hasBody = []byte(*q.Body), true
		}
		for _, c := range q.BodyContains {
			r.contains = append(r.contains, []byte(c))
		}
		r.raw = r.wire(u)
		m.reqs = append(m.reqs, r)
		m.total += r.weight
		m.cum = append(m.cum, m.total)
	}
	return m, nil
}

// wire renders the request as HTTP/1.1 bytes: request line, Host, the
// headers sorted by name, Content-Length when there is a body (or the
// method usually carries one), the body.
func (r *request) wire(u *url.URL) []byte {
	var b bytes.Buffer
	b.WriteString(r.method + " " + u.RequestURI() + " HTTP/1.1\r\nHost: " + r.host + "\r\n")
	keys := make([]string, 0, len(r.header))
	for k := range r.header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range r.header[k] {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	switch {
	case r.hasBody:
		b.WriteString("Content-Length: " + strconv.Itoa(len(r.body)) + "\r\n")
	case r.method == http.MethodPost || r.method == http.MethodPut || r.method == http.MethodPatch:
		b.WriteString("Content-Length: 0\r\n")
	}
	b.WriteString("\r\n")
	b.Write(r.body)
	return b.Bytes()
}
