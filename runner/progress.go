package runner

import (
	"fmt"
	"strings"
	"time"
)

// progress redraws the live line: phase, elapsed / total, VUs, req/s, p99,
// errors, active faults.
func (r *run) progress(now, start, end time.Time) {
	if r.o.Progress == nil {
		return
	}
	active := strings.Join(r.tl.Active(), ",")
	if active == "" {
		active = "-"
	}
	cl := r.tl.Classify(now)
	if r.col == nil {
		fmt.Fprintf(r.o.Progress, "\r\033[K%-8s %s/%s  in-cluster load (no samples)  faults: %s", cl.Phase, fmtDur(now.Sub(start)), fmtDur(end.Sub(start)), active)
		return
	}
	rps, p99, errRate := r.col.Recent(now)
	vus := ""
	if es, ok := r.src.(*engineSource); ok {
		vus = fmt.Sprintf("  %4d VUs", es.e.Stats().VUs)
	}
	fmt.Fprintf(r.o.Progress, "\r\033[K%-8s %s/%s%s  %6.0f req/s  p99 %7.1fms  errors %5.2f%%  faults: %s",
		cl.Phase, fmtDur(now.Sub(start)), fmtDur(end.Sub(start)), vus, rps, p99, errRate, active)
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
