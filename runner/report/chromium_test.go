package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chromium finds a headless-capable Chromium, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install -y chromium; .ci/run installs it): report.html was not rendered in a browser")
	return ""
}

func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestHTMLInChromium renders report.html in headless Chromium: the DOM after
// the page loaded holds every chart with its polylines drawn through the
// series' points (inside the plot), the fault's actual window shaded in
// each chart, the SLO table and the baseline diff; a screenshot is not
// blank.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	res := regressed(t)
	dir := t.TempDir()
	if err := WriteAll(dir, res); err != nil {
		t.Fatal(err)
	}
	page := "file://" + filepath.Join(dir, HTMLFile)

	dom := string(runChromium(t, bin, "--dump-dom", page))
	if !strings.Contains(dom, "</svg>") {
		t.Fatalf("no SVG in the rendered DOM:\n%.2000s", dom)
	}
	// Every series is a polyline with as many points as the series has.
	lineRE := regexp.MustCompile(`<polyline class="series ([a-zA-Z0-9]+)" data-points="(\d+)"[^>]* points="([^"]*)"`)
	lines := lineRE.FindAllStringSubmatch(dom, -1)
	want := map[string]int{"p50": len(res.Series), "p95": len(res.Series), "p99": len(res.Series), "errorRate": len(res.Series),
		"rps": len(res.Series), "goroutines": len(res.Runtime), "heap": len(res.Runtime)}
	if len(lines) != len(want) {
		t.Errorf("%d polylines, want %d", len(lines), len(want))
	}
	for _, l := range lines {
		pts := strings.Fields(l[3])
		if n, _ := strconv.Atoi(l[2]); n != len(pts) || len(pts) != want[l[1]] || len(pts) < 2 {
			t.Errorf("polyline %s: %d points (data-points %s), want %d", l[1], len(pts), l[2], want[l[1]])
		}
		for _, p := range pts {
			x, y, ok := strings.Cut(p, ",")
			xf, err1 := strconv.ParseFloat(x, 64)
			yf, err2 := strconv.ParseFloat(y, 64)
			if !ok || err1 != nil || err2 != nil || xf < padL || xf > chartW-padR || yf < padT || yf > chartH-padB {
				t.Errorf("polyline %s: point %q outside the plot", l[1], p)
				break
			}
		}
	}
	// The latency chart climbs during the fault: its p99 peak is inside
	// the shaded window.
	rectRE := regexp.MustCompile(`<rect class="fault" data-fault="([^"]+)" data-start="([0-9.]+)" data-end="([0-9.]+)" x="([0-9.]+)" y="[0-9.]+" width="([0-9.]+)"`)
	rects := rectRE.FindAllStringSubmatch(dom, -1)
	if charts := strings.Count(dom, `<svg id="chart-`); len(rects) != charts*len(res.Faults) || charts != 5 {
		t.Errorf("%d fault rects in %d charts, want one per fault per chart", len(rects), charts)
	}
	for _, r := range rects {
		w, _ := strconv.ParseFloat(r[5], 64)
		if r[1] != "jitter" || r[2] != "4.00" || r[3] != "8.00" || w < plotW*3.9/12 || w > plotW*4.1/12 {
			t.Errorf("fault rect %v: want jitter over its actual 4.00-8.00 s, a third of the plot", r[1:])
		}
	}
	for _, l := range lines {
		if l[1] != "p99" {
			continue
		}
		peakX, peakY := 0.0, chartH
		for _, p := range strings.Fields(l[3]) {
			x, y, _ := strings.Cut(p, ",")
			xf, _ := strconv.ParseFloat(x, 64)
			yf, _ := strconv.ParseFloat(y, 64)
			if yf < peakY {
				peakX, peakY = xf, yf
			}
		}
		x0, _ := strconv.ParseFloat(rects[0][4], 64)
		w, _ := strconv.ParseFloat(rects[0][5], 64)
		if peakX < x0 || peakX > x0+w {
			t.Errorf("p99 peaks at x=%.1f, outside the fault window %.1f-%.1f", peakX, x0, x0+w)
		}
	}
	for _, want := range []string{`id="slos"`, `id="regressions"`, `data-phase="fault"`, `<h1>REGRESSION — golden-demo 1.0.0</h1>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %s", want)
		}
	}
	if n := strings.Count(dom, `<span class="b b-regression">`); n < 2 {
		t.Errorf("%d regression badges in the baseline tables, want the fault p99 and errorRate ones", n)
	}

	shot := filepath.Join(dir, "report.png")
	runChromium(t, bin, "--window-size=1100,2000", "--screenshot="+shot, page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if colours := distinctColours(img); colours < 20 {
		t.Errorf("the screenshot has %d distinct colours: blank?", colours)
	}
	if os.Getenv("FAULTLINE_KEEP_SCREENSHOT") != "" {
		data, _ := os.ReadFile(shot)
		_ = os.WriteFile(os.Getenv("FAULTLINE_KEEP_SCREENSHOT"), data, 0o644)
	}
}

func distinctColours(img image.Image) int {
	seen := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
		}
	}
	return len(seen)
}
