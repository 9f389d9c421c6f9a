package main

import (
	"io"
	"os"
	"sync"
)

// outputWriter is stdout or stderr for the commands: a terminal or a pipe
// that may go away while faultline still has work to do. A closed terminal
// fails every write with EIO, a reader that left (| head) with EPIPE (and
// SIGPIPE, caught in run). After the first failed write it writes nothing
// more, and no write returns an error: no caller (progress, event lines,
// the result table) stops halfway, least of all during cleanup, because
// its output is gone. Err reports the first failure.
type outputWriter struct {
	f *os.File

	mu  sync.Mutex
	err error
}

func newOutputWriter(f *os.File) *outputWriter { return &outputWriter{f: f} }

// Write writes p, or drops it after an earlier failure; it always reports
// len(p) written.
func (w *outputWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		if _, err := w.f.Write(p); err != nil {
			w.err = err
		}
	}
	return len(p), nil
}

// Err is the first write error, nil while every write succeeded.
func (w *outputWriter) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Fd is the file's descriptor, so that a terminal is still recognised as
// one (term.IsTerminal) behind the writer.
func (w *outputWriter) Fd() uintptr { return w.f.Fd() }

var _ io.Writer = (*outputWriter)(nil)

// writeOut writes b to the file named by a command's -f/-o flag, or to w
// (standard output) when the flag is empty or "-".
func writeOut(w io.Writer, file string, b []byte) error {
	if file == "" || file == "-" {
		_, err := w.Write(b)
		return err
	}
	return os.WriteFile(file, b, 0o644)
}
