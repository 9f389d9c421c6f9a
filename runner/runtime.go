package runner

import (
	"context"
	"fmt"
	"time"

	"faultline.dev/faultline/results"
	"faultline.dev/faultline/runner/scrape"
)

// minScrapeInterval bounds how often a time-scaled run scrapes the target.
const minScrapeInterval = 250 * time.Millisecond

// scrapeInterval is how often the target's /metrics is scraped: every second, times the run's
// --time-scale when that is below 1 (at least every 250 ms), so a shortened run judges each
// phase on about as many samples as the full one (with one scrape a second, the 1.5 s judged
// recovery of a 0.15-scaled 60 s scenario had a single sample). More samples do not make a window
// shorter than the target's GC cycle representative of its heap: that needs a longer run.
func scrapeInterval(timeScale float64) time.Duration {
	iv := time.Second
	if timeScale > 0 && timeScale < 1 {
		iv = time.Duration(float64(iv) * timeScale)
	}
	return max(iv, minScrapeInterval)
}

// scrape polls the target's /metrics and folds samples into phases; too
// many failures in a row abort the run.
func (r *run) scrape(ctx context.Context, cancel context.CancelFunc, url string) {
	s := &scrape.Scraper{URL: url, Interval: scrapeInterval(r.p.TimeScale)}
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
		if len(r.rtSeries) > 4*3600 { // bounded: four hours at one point a second
			r.rtSeries = r.rtSeries[1:]
		}
	})
}
