package inject

import (
	"bytes"
	"context"
	"encoding/json"
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
	if !h.path.MatchString(r.URL.Path) {
		return false
	}
	for k, v := range h.reqHeaders {
		got := r.Header.Get(k)
		if http.CanonicalHeaderKey(k) == "Host" {
			got = r.Host
		}
		if got != v {
			return false
		}
	}
	return true
}

// headersMatch: every header of want is in hdr with that value.
func headersMatch(hdr http.Header, want map[string]string) bool {
	for k, v := range want {
		if hdr.Get(k) != v {
			return false
		}
	}
	return true
}

// maxPatchBody is the largest body a patch.body merges into; a larger one,
// or one that is not JSON, passes unchanged (as Chaos Mesh's proxy leaves
// a body it cannot parse).
const maxPatchBody = 16 << 20

// patchedBody merges the fault's JSON merge patch (RFC 7396) into body. It
// returns the new body, or the original bytes when they are not JSON.
func (h *httpFault) patchedBody(body io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, maxPatchBody+1))
	if err != nil {
		return nil, err
	}
	var doc any
	if len(data) > maxPatchBody || json.Unmarshal(data, &doc) != nil {
		return data, nil
	}
	out, err := json.Marshal(mergePatch(doc, h.patchBody))
	if err != nil {
		return data, nil
	}
	return out, nil
}

// mergePatch applies an RFC 7396 JSON merge patch to doc: an object merges
// member by member (null removes one), anything else replaces.
func mergePatch(doc, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	dm, ok := doc.(map[string]any)
	if !ok {
		dm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(dm, k)
			continue
		}
		dm[k] = mergePatch(dm[k], v)
	}
	return dm
}

// setBody replaces a request's or response's body, with its length.
func setBody(body *io.ReadCloser, length *int64, te *[]string, hdr http.Header, data []byte) {
	*body = io.NopCloser(bytes.NewReader(data))
	*length = int64(len(data))
	*te = nil
	hdr.Del("Content-Encoding")
}

// onRequest applies the request-side httpFaults of fs to r: delay, then
// abort (ErrAborted), or replace (headers, body, path, method, queries)
// then patch (added headers and query pairs, a JSON merge patch of the
// body). It returns the response-side faults that
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
				setBody(&r.Body, &r.ContentLength, &r.TransferEncoding, r.Header, []byte(*rp.Body))
			}
			if rp.Path != "" {
				r.URL.Path, r.URL.RawPath = rp.Path, ""
			}
			if rp.Method != "" {
				r.Method = rp.Method
			}
			if len(rp.Queries) > 0 {
				q := r.URL.Query()
				for k, v := range rp.Queries {
					q.Set(k, v)
				}
				r.URL.RawQuery = q.Encode()
			}
		}
		if pa := h.patch; pa != nil {
			for _, hd := range pa.Headers {
				r.Header.Add(hd[0], hd[1])
			}
			if len(pa.Queries) > 0 {
				q := r.URL.Query()
				for _, kv := range pa.Queries {
					q.Add(kv[0], kv[1])
				}
				r.URL.RawQuery = q.Encode()
			}
			if pa.Body != nil && r.Body != nil && r.Body != http.NoBody {
				data, err := h.patchedBody(r.Body)
				r.Body.Close()
				if err != nil {
					return nil, err
				}
				setBody(&r.Body, &r.ContentLength, &r.TransferEncoding, r.Header, data)
			}
		}
	}
	return onResponse, nil
}

// onResponse applies response-side httpFaults (selected by status code and
// response headers when they name them): delay, then abort, or replace then
// patch.
func (f *Faults) onResponse(resp *http.Response, hs []*httpFault) error {
	for _, h := range hs {
		if h.code != 0 && resp.StatusCode != h.code || !headersMatch(resp.Header, h.respHeaders) {
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
				setBody(&resp.Body, &resp.ContentLength, &resp.TransferEncoding, resp.Header, []byte(*rp.Body))
				resp.Header.Set("Content-Length", strconv.Itoa(len(*rp.Body)))
			}
		}
		if pa := h.patch; pa != nil {
			for _, hd := range pa.Headers {
				resp.Header.Add(hd[0], hd[1])
			}
			if pa.Body != nil {
				data, err := h.patchedBody(resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				setBody(&resp.Body, &resp.ContentLength, &resp.TransferEncoding, resp.Header, data)
				resp.Header.Set("Content-Length", strconv.Itoa(len(data)))
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
