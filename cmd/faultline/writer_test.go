package main

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/creack/pty"
)

// TestOutputWriter: whatever becomes of the file, a write reports success;
// Err keeps the first failure, and nothing is written after it (a later,
// different failure does not replace it).
func TestOutputWriter(t *testing.T) {
	tests := []struct {
		name string
		// open returns the file to write to, a func that breaks it the way
		// the case says, and what reading it should give (nil: unread).
		open    func(t *testing.T) (w *os.File, brk func(), read func() string)
		wantErr error // nil: every write succeeds
	}{
		{
			name: "a pipe someone reads",
			open: func(t *testing.T) (*os.File, func(), func() string) {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				return w, func() {}, func() string {
					w.Close()
					b, _ := io.ReadAll(r)
					return string(b)
				}
			},
		},
		{
			name: "the reader left (| head)",
			open: func(t *testing.T) (*os.File, func(), func() string) {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				return w, func() { r.Close() }, nil
			},
			wantErr: syscall.EPIPE,
		},
		{
			name: "the terminal was closed",
			open: func(t *testing.T) (*os.File, func(), func() string) {
				master, tty, err := pty.Open()
				if err != nil {
					t.Skipf("no pty here: %v", err)
				}
				return tty, func() { master.Close() }, nil
			},
			wantErr: syscall.EIO,
		},
		{
			name: "a closed file",
			open: func(t *testing.T) (*os.File, func(), func() string) {
				f, err := os.Create(t.TempDir() + "/out")
				if err != nil {
					t.Fatal(err)
				}
				return f, func() { f.Close() }, nil
			},
			wantErr: os.ErrClosed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, brk, read := tt.open(t)
			defer f.Close()
			w := newOutputWriter(f)
			if w.Fd() != f.Fd() {
				t.Errorf("Fd %d, want the file's %d", w.Fd(), f.Fd())
			}
			if n, err := w.Write([]byte("one\n")); n != 4 || err != nil {
				t.Fatalf("first write: %d, %v; want 4, nil", n, err)
			}
			brk()
			for _, s := range []string{"two\n", "three\n"} {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Errorf("write %q: %d, %v; want %d, nil", s, n, err, len(s))
				}
			}
			if tt.wantErr == nil {
				if w.Err() != nil {
					t.Errorf("Err = %v, want nil", w.Err())
				}
				if got := read(); got != "one\ntwo\nthree\n" {
					t.Errorf("read %q", got)
				}
				return
			}
			if !errors.Is(w.Err(), tt.wantErr) {
				t.Fatalf("Err = %v, want %v", w.Err(), tt.wantErr)
			}
			// Nothing more is tried: another failure would be a closed file.
			f.Close()
			if _, err := w.Write([]byte("four\n")); err != nil || !errors.Is(w.Err(), tt.wantErr) {
				t.Errorf("after closing: write %v, Err %v; want nil, still %v", err, w.Err(), tt.wantErr)
			}
		})
	}
}
