// Package lsptest is a small Language Server Protocol client for tests: it
// starts a language server as editors do (stdio, JSON-RPC with
// Content-Length framing), answers the requests a server sends its client,
// and collects the diagnostics it publishes.
package lsptest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Client speaks the Language Server Protocol (JSON-RPC with
// Content-Length framing) to a server process over stdio, as editors do.
type Client struct {
	t      testing.TB
	cmd    *exec.Cmd
	in     io.WriteCloser
	mu     sync.Mutex
	nextID int
	// answers: requests the server sends us, by method, answered with
	// the function's result.
	answers map[string]func(params json.RawMessage) any
	pending map[int]chan json.RawMessage
	notes   chan message
	stderr  strings.Builder
}

type message struct {
	ID     *json.RawMessage `json:"id,omitempty"`
	Method string           `json:"method,omitempty"`
	Params json.RawMessage  `json:"params,omitempty"`
	Result json.RawMessage  `json:"result,omitempty"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// Start starts a language server: name and args, in dir. answers
// holds the results for requests the server sends (by method); others
// get null. The server is stopped when the test ends.
func Start(t testing.TB, dir string, answers map[string]func(json.RawMessage) any, name string, args ...string) *Client {
	t.Helper()
	c := &Client{t: t, answers: answers, pending: map[int]chan json.RawMessage{}, notes: make(chan message, 1024)}
	c.cmd = exec.Command(name, args...)
	c.cmd.Dir = dir
	c.cmd.Stderr = &syncWriter{b: &c.stderr, mu: &c.mu}
	var err error
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.in.Close()
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.cmd.Process.Kill()
			<-done
		}
	})
	go c.read(bufio.NewReader(out))
	return c
}

type syncWriter struct {
	b  *strings.Builder
	mu *sync.Mutex
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (c *Client) read(r *bufio.Reader) {
	defer close(c.notes)
	for {
		n := -1
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length:"); ok {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if n < 0 {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if os.Getenv("LSPTEST_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "<< %.400s\n", body)
		}
		var m message
		if err := json.Unmarshal(body, &m); err != nil {
			continue
		}
		switch {
		case m.ID != nil && m.Method != "": // a request from the server
			var result any
			if f := c.answers[m.Method]; f != nil {
				result = f(m.Params)
			}
			c.send(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": result})
		case m.ID != nil: // a response
			id, _ := strconv.Atoi(string(*m.ID))
			c.mu.Lock()
			ch := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ch != nil {
				if m.Error != nil {
					ch <- json.RawMessage(`{"error":` + strconv.Quote(m.Error.Message) + `}`)
				} else {
					ch <- m.Result
				}
			}
		default:
			c.notes <- m
		}
	}
}

func (c *Client) send(msg any) {
	b, err := json.Marshal(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.in, "Content-Length: %d\r\n\r\n%s", len(b), b)
}

// Call sends a request and waits for its result.
func (c *Client) Call(method string, params any) json.RawMessage {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan json.RawMessage, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	c.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		c.t.Fatalf("%s: no answer in 60s; server stderr:\n%s", method, c.serverStderr())
		return nil
	}
}

// Notify sends a notification.
func (c *Client) Notify(method string, params any) {
	c.send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

// Stderr is what the server wrote to its stderr so far.
func (c *Client) Stderr() string { return c.serverStderr() }

func (c *Client) serverStderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// Diagnostic is one published diagnostic.
type Diagnostic struct {
	Range struct {
		Start struct{ Line, Character int } `json:"start"`
	} `json:"range"`
	Message  string `json:"message"`
	Severity int    `json:"severity"`
}

// String formats the diagnostic as line:col: message (1-based).
func (d Diagnostic) String() string {
	return fmt.Sprintf("%d:%d: %s", d.Range.Start.Line+1, d.Range.Start.Character+1, d.Message)
}

// Diagnostics collects publishDiagnostics until every uri has been
// published and the server has been quiet for a while; the last list per
// uri wins.
func (c *Client) Diagnostics(uris []string, quiet time.Duration) map[string][]Diagnostic {
	c.t.Helper()
	got := map[string][]Diagnostic{}
	seen := map[string]bool{}
	deadline := time.After(120 * time.Second)
	for {
		wait := quiet
		if len(seen) < len(uris) {
			wait = 120 * time.Second
		}
		select {
		case m, ok := <-c.notes:
			if !ok {
				c.t.Fatalf("the language server exited; stderr:\n%s", c.serverStderr())
			}
			if m.Method != "textDocument/publishDiagnostics" {
				continue
			}
			var p struct {
				URI         string       `json:"uri"`
				Diagnostics []Diagnostic `json:"diagnostics"`
			}
			if err := json.Unmarshal(m.Params, &p); err != nil {
				c.t.Fatal(err)
			}
			got[p.URI] = p.Diagnostics
			seen[p.URI] = true
		case <-time.After(wait):
			return got
		case <-deadline:
			c.t.Fatalf("diagnostics for %d of %d files after 120s; server stderr:\n%s", len(seen), len(uris), c.serverStderr())
		}
	}
}

// NeedTool finds a tool a test needs: in CI (CI=true) its absence fails the
// test; elsewhere the test is skipped, saying how to install it.
func NeedTool(t testing.TB, path, install string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if _, err := exec.LookPath(path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing: %s", path, install)
	}
	t.Skipf("%s is missing: %s", path, install)
}

// Drain collects what the server publishes until it has been quiet for the
// given time, for a change that may publish nothing.
func (c *Client) Drain(quiet time.Duration) map[string][]Diagnostic {
	got := map[string][]Diagnostic{}
	for {
		select {
		case m, ok := <-c.notes:
			if !ok {
				return got
			}
			if m.Method != "textDocument/publishDiagnostics" {
				continue
			}
			var p struct {
				URI         string       `json:"uri"`
				Diagnostics []Diagnostic `json:"diagnostics"`
			}
			if json.Unmarshal(m.Params, &p) == nil {
				got[p.URI] = p.Diagnostics
			}
		case <-time.After(quiet):
			return got
		}
	}
}
