package inject

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"faultline.dev/faultline/schema"
)

// newTarget is a small HTTP service: "/big?n=N" sends N bytes, "/sink"
// reads the body and answers its length, "/hdr" echoes X-Injected and the
// body, "/missing" is a 404, anything else answers "ok".
func newTarget(t testing.TB) *httptest.Server {
	t.Helper()
	big := bytes.Repeat([]byte("x"), 4<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(big[:n])
	})
	mux.HandleFunc("/sink", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/hdr", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s|%s", r.Header.Get("X-Injected"), b)
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// echoServer echoes every connection until EOF, then half-closes.
func echoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	return ln.Addr().String()
}

// newClient is a plain HTTP client: the direct path.
func newClient(t testing.TB, keepAlive bool) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableKeepAlives: !keepAlive, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// faultClient is the in-process path, as the local backend builds it for
// the load engine: the transport dials through f.Dial and is wrapped by
// f.Middleware(). It returns the number of connections dialled so far.
func faultClient(t testing.TB, f *Faults, keepAlive bool) (*http.Client, *atomic.Int64) {
	t.Helper()
	dials := &atomic.Int64{}
	d := &net.Dialer{Timeout: 5 * time.Second}
	next := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	tr := &http.Transport{DialContext: f.Dial(next), MaxIdleConnsPerHost: 64,
		DisableKeepAlives: !keepAlive, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: f.Middleware().Wrap(tr), Timeout: 10 * time.Second}, dials
}

type result struct {
	code int
	body string
	hdr  http.Header
	took time.Duration
	err  error
}

func do(c *http.Client, method, url string, body string) result {
	return doCtx(context.Background(), c, method, url, body)
}

func doCtx(ctx context.Context, c *http.Client, method, url string, body string) result {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return result{err: err}
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err, took: time.Since(start)}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return result{code: resp.StatusCode, body: string(b), hdr: resp.Header, took: time.Since(start), err: err}
}

// latencies times n sequential GETs of url.
func latencies(t testing.TB, c *http.Client, url string, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, n)
	for range n {
		r := do(c, "GET", url, "")
		if r.err != nil || r.code != 200 {
			t.Fatalf("GET %s: %d %v", url, r.code, r.err)
		}
		out = append(out, r.took)
	}
	return out
}

func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func delayFault(latency, jitter time.Duration, corr float64, dir string) schema.Fault {
	return schema.Fault{NetworkDelay: &schema.NetworkDelay{Latency: schema.Duration(latency), Jitter: schema.Duration(jitter), Correlation: corr, Direction: dir}}
}

func mustSet(t testing.TB, f *Faults, name string, sf schema.Fault) {
	t.Helper()
	if err := f.Set(name, sf); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
