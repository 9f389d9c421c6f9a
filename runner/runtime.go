package runner

import (
	"context"
	"fmt"
	"time"

	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/scrape"
)

// scrape polls the target's /metrics and folds samples into phases; too
// many failures in a row abort the run.
func (r *run) scrape(ctx context.Context, cancel context.CancelFunc, url string) {
	s := &scrape.Scraper{URL: url, Interval: time.Second}
	fails := 0
	s.Run(ctx, func(smp scrape.Sample, err error) {
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			fails++
			r.logf("scrape: %v", err)
			if fails >= r.o.ScrapeFailures {
				r.abort(fmt.Sprintf("scraping %s failed %d times in a row: %v", url, fails, err))
				cancel()
			}
			return
		}
		fails = 0
		start := r.tl.LoadStart()
		if start.IsZero() || smp.Time.Before(start) {
			return
		}
		cl := r.tl.Classify(smp.Time)
		key := cl.Phase
		if cl.Grace {
			key = "grace"
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.scrapeOK = true
		ph := r.runtime[key]
		if ph == nil {
			ph = &scrape.Phase{}
			r.runtime[key] = ph
		}
		ph.Add(smp)
		r.rtSeries = append(r.rtSeries, results.RuntimePoint{Offset: smp.Time.Sub(start).Seconds(), Goroutines: smp.Goroutines, HeapInUse: smp.HeapInUse, RSS: smp.RSS})
		if len(r.rtSeries) > 4*3600 { // bounded: one point a second, four hours
			r.rtSeries = r.rtSeries[1:]
		}
	})
}
