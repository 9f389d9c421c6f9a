package inject

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

type respFaultsKey struct{}

var errAbortResponse = errors.New("inject: response aborted by an httpFault")

func (h *httpFault) matches(r *http.Request) bool {
	if h.method != "" && !strings.EqualFold(h.method, r.Method) {
		return false
	}
	return h.path.MatchString(r.URL.Path)
}

// serveHTTP is the HTTP path: request-side faults here, response-side ones
// in modifyResponse.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p.httpReqs.Add(1)
	fs := p.faults.Load()
	if len(fs.http) == 0 {
		// No HTTP fault any more: send the client back to the fast path.
		w.Header().Set("Connection", "close")
	}
	var onResponse []*httpFault
	for _, h := range fs.http {
		if !h.matches(r) {
			continue
		}
		if h.response {
			onResponse = append(onResponse, h)
			continue
		}
		if h.delay > 0 && !p.sleepWhile(r.Context(), h.delay, &h.live) {
			return
		}
		if !h.live.Load() {
			continue
		}
		if h.abort {
			p.aborted.Add(1)
			panic(http.ErrAbortHandler) // close the connection, no response
		}
		if rp := h.replace; rp != nil {
			for k, v := range rp.Headers {
				r.Header.Set(k, v)
			}
			if rp.Body != nil {
				r.Body = io.NopCloser(strings.NewReader(*rp.Body))
				r.ContentLength = int64(len(*rp.Body))
				r.TransferEncoding = nil
				r.Header.Del("Content-Encoding")
			}
		}
	}
	if len(onResponse) > 0 {
		r = r.WithContext(context.WithValue(r.Context(), respFaultsKey{}, onResponse))
	}
	p.rp.ServeHTTP(w, r)
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	hs, _ := resp.Request.Context().Value(respFaultsKey{}).([]*httpFault)
	for _, h := range hs {
		if h.code != 0 && resp.StatusCode != h.code {
			continue
		}
		if h.delay > 0 && !p.sleepWhile(resp.Request.Context(), h.delay, &h.live) {
			return context.Cause(resp.Request.Context())
		}
		if !h.live.Load() {
			continue
		}
		if h.abort {
			p.aborted.Add(1)
			return errAbortResponse
		}
		if rp := h.replace; rp != nil {
			if rp.Code != 0 {
				resp.StatusCode = rp.Code
				resp.Status = strconv.Itoa(rp.Code) + " " + http.StatusText(rp.Code)
			}
			for k, v := range rp.Headers {
				resp.Header.Set(k, v)
			}
			if rp.Body != nil {
				resp.Body.Close()
				resp.Body = io.NopCloser(strings.NewReader(*rp.Body))
				resp.ContentLength = int64(len(*rp.Body))
				resp.TransferEncoding = nil
				resp.Header.Set("Content-Length", strconv.Itoa(len(*rp.Body)))
				resp.Header.Del("Content-Encoding")
			}
		}
	}
	return nil
}

// sleepWhile waits d, or less if ctx ends (false) or the fault whose live
// flag this is is cleared (true: go on without the rest of the delay).
func (p *Proxy) sleepWhile(ctx context.Context, d time.Duration, live *atomic.Bool) bool {
	end := time.Now().Add(d)
	t := time.NewTimer(max(d-fineWindow, 0))
	defer t.Stop()
	for {
		fs := p.faults.Load()
		if !live.Load() {
			return true
		}
		select {
		case <-t.C:
			preciseSleep(min(time.Until(end), fineWindow))
			return true
		case <-fs.changed:
		case <-ctx.Done():
			return false
		}
	}
}
