package schema

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("250ms",
// "1m30s") in scenarios. It decodes through UnmarshalText, as CUE's
// Value.Decode cannot fill a plain time.Duration from a string.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in its shortest Go form ("1m", not "1m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String is the shortest Go form of the duration: "1m", "1h30m", "250ms".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Size is an amount of memory as written in a scenario: "256MB", "1GiB".
type Size string

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// Bytes returns the size in bytes.
func (s Size) Bytes() (int64, error) {
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(string(s), u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("size %q: %q is not a whole number", string(s), n)
			}
			if v > (1<<63-1)/u.mult {
				return 0, fmt.Errorf("size %q is too large", string(s))
			}
			return v * u.mult, nil
		}
	}
	return 0, fmt.Errorf("size %q: want a whole number and a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", string(s))
}
