package runner

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// snapshot saves goroutine and heap profiles of the target when it serves
// /debug/pprof; best effort.
func (r *run) snapshot(ctx context.Context, name string) {
	base := strings.TrimSuffix(r.p.Source.Target.URL, "/")
	if m, err := url.Parse(r.p.Source.Target.Metrics); err == nil && m.Host != "" {
		base = m.Scheme + "://" + m.Host // pprof is served where /metrics is
	}
	c := &http.Client{Timeout: 3 * time.Second}
	for _, prof := range []string{"goroutine", "heap"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/"+prof, nil)
		if err != nil {
			return
		}
		resp, err := c.Do(req)
		if err != nil {
			return
		}
		if resp.StatusCode == http.StatusOK {
			f := filepath.Join(r.o.ReportDir, "pprof", name+"."+prof+".pb.gz")
			if os.MkdirAll(filepath.Dir(f), 0o755) == nil {
				if out, err := os.Create(f); err == nil {
					_, _ = io.Copy(out, resp.Body)
					_ = out.Close()
					r.mu.Lock()
					r.res.Profiles = append(r.res.Profiles, filepath.Join("pprof", name+"."+prof+".pb.gz"))
					r.mu.Unlock()
				}
			}
		}
		resp.Body.Close()
	}
}
