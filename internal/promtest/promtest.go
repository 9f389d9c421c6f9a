// Package promtest starts Debian's real `prometheus` (2.42) for tests, on
// loopback, with the remote-write receiver and native histograms on, in a
// temporary TSDB. It is test support, not part of faultline.
package promtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"faultline.dev/faultline/internal/testport"
)

// Target is one scrape target: host:port and the labels its series get
// (namespace, pod, ...).
type Target struct {
	Addr   string
	Labels map[string]string
}

// Server is a running Prometheus.
type Server struct {
	URL string
	cmd *exec.Cmd
	log *bytes.Buffer
}

// Start starts Prometheus scraping targets every second, or skips the
// test when the binary is missing (.ci/run installs it). It is stopped at
// the end of the test.
func Start(t testing.TB, targets ...Target) *Server {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (apt-get install prometheus; .ci/run does)")
	}
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n")
	for i, tg := range targets {
		fmt.Fprintf(&cfg, "  - job_name: t%d\n    static_configs:\n      - targets: [%q]\n", i, tg.Addr)
		if len(tg.Labels) > 0 {
			cfg.WriteString("        labels:\n")
			for k, v := range tg.Labels {
				fmt.Fprintf(&cfg, "          %s: %q\n", k, v)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), log: &bytes.Buffer{}}
	s.cmd = exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--web.enable-remote-write-receiver", "--enable-feature=native-histograms")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30s: %v\n%s", err, s.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Prometheus starts scraping up to 5s after it is ready (its scrape
	// manager reloads on a 5s tick): wait for every target's first scrape.
	for len(targets) > 0 {
		resp, err := http.Get(s.URL + "/api/v1/query?query=" + url.QueryEscape("count(up == 1)"))
		if err == nil {
			var body struct {
				Data struct {
					Result []struct {
						Value [2]any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if r := body.Data.Result; len(r) == 1 && r[0].Value[1] == fmt.Sprint(len(targets)) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not scrape its %d target(s) within 30s: %v\n%s", len(targets), err, s.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return s
}

// WriteURL is the remote-write endpoint.
func (s *Server) WriteURL() string { return s.URL + "/api/v1/write" }

// Stop stops the server (idempotent).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// freePort is a port for Prometheus to listen on (testport: below the
// ephemeral range, so no connection takes it before Prometheus binds it).
func freePort(t testing.TB) int {
	t.Helper()
	return testport.Loopback(t, 1)[0]
}
