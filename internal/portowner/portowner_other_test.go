//go:build !linux

package portowner

import (
	"errors"
	"strings"
	"testing"
)

func TestUnsupported(t *testing.T) {
	tests := []struct {
		port int
	}{{8080}, {1}}
	for _, tt := range tests {
		if _, err := Lookup(tt.port); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Lookup(%d): %v, want ErrUnsupported", tt.port, err)
		}
		if got := Describe(tt.port); !strings.HasPrefix(got, "an unknown process (") || !strings.Contains(got, "Linux") {
			t.Errorf("Describe(%d) = %q, want an unknown process that names Linux", tt.port, got)
		}
	}
}
