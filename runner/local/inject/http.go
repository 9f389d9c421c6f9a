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

// ErrAborted is the error a request gets when an httpFault aborts it (the
// connection is closed without a response).
var ErrAborted = errors.New("inject: connection closed by an httpFault (abort)")

var errAbortResponse = errors.New("inject: response aborted by an httpFault")

func (h *httpFault) matches(r *http.Request) bool {
	if h.method != "" && !strings.EqualFold(h.method, r.Method) {
		return false
	}
	return h.path.MatchString(r.URL.Path)
}

// onRequest applies the request-side httpFaults of fs to r: delay, then
// abort (ErrAborted) or replace. It returns the response-side faults that
// match r, for onResponse.
func (f *Faults) onRequest(fs *faultSet, r *http.Request) ([]*httpFault, error) {
	var onResponse []*httpFault
	for _, h := range fs.http {
		if !h.matches(r) {
			continue
		}
		if h.response {
			onResponse = append(onResponse, h)
			continue
		}
		if h.delay > 0 && !f.sleepWhile(r.Context(), h.delay, &h.live) {
			return nil, context.Cause(r.Context())
		}
		if !h.live.Load() {
			continue
		}
		if h.abort {
			f.aborted.Add(1)
			return nil, ErrAborted
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
	return onResponse, nil
}

// onResponse applies response-side httpFaults (selected by status code
// when they name one): delay, then abort or replace.
func (f *Faults) onResponse(resp *http.Response, hs []*httpFault) error {
	for _, h := range hs {
		if h.code != 0 && resp.StatusCode != h.code {
			continue
		}
		if h.delay > 0 && !f.sleepWhile(resp.Request.Context(), h.delay, &h.live) {
			return context.Cause(resp.Request.Context())
		}
		if !h.live.Load() {
			continue
		}
		if h.abort {
			f.aborted.Add(1)
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
func (f *Faults) sleepWhile(ctx context.Context, d time.Duration, live *atomic.Bool) bool {
	end := time.Now().Add(d)
	t := time.NewTimer(max(d-fineWindow, 0))
	defer t.Stop()
	for {
		fs := f.load()
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

// Middleware returns the HTTP faults as a load-engine middleware (the
// shape of load.Middleware): while an httpFault is active, the engine sends
// its requests through the RoundTripper Wrap returns, which applies it;
// otherwise the engine's own fast path runs untouched.
func (f *Faults) Middleware() *Middleware { return &Middleware{f: f} }

// Middleware applies the active httpFaults to the requests of an
// in-process client.
type Middleware struct{ f *Faults }

// Active reports whether an httpFault is active.
func (m *Middleware) Active() bool { return len(m.f.load().http) > 0 }

// Wrap returns next with the active httpFaults applied to each request.
func (m *Middleware) Wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripper{f: m.f, next: next}
}

type roundTripper struct {
	f    *Faults
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	fs := rt.f.load()
	if len(fs.http) == 0 {
		return rt.next.RoundTrip(r)
	}
	// RoundTrip must not modify the caller's request: a replace works on a
	// copy.
	r = r.Clone(r.Context())
	onResponse, err := rt.f.onRequest(fs, r)
	if err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	resp, err := rt.next.RoundTrip(r)
	if err != nil || len(onResponse) == 0 {
		return resp, err
	}
	if err := rt.f.onResponse(resp, onResponse); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}
