package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// grpcCodes are gRPC's status codes by number, named as the gRPC
// specification (and k6's grpc.Status* constants, without the prefix) name
// them.
var grpcCodes = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
	"PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// GRPCCodeName names a gRPC status code ("OK", "UNAVAILABLE", ...); codes
// outside 0-16 read as "CODE_<n>".
func GRPCCodeName(code int) string {
	if code >= 0 && code < len(grpcCodes) {
		return grpcCodes[code]
	}
	return "CODE_" + strconv.Itoa(code)
}

// ParseGRPCCode reads a gRPC status code by name ("NOT_FOUND") or number
// ("5").
func ParseGRPCCode(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n >= len(grpcCodes) {
			return 0, fmt.Errorf("gRPC status %d is not a code: want 0-16", n)
		}
		return n, nil
	}
	for i, c := range grpcCodes {
		if c == s {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q is not a gRPC status code: want one of %s, or its number", s, strings.Join(grpcCodes[:], ", "))
}

// GRPCStatus mirrors #Request.expect.grpcStatus: a code name or number,
// kept as written.
type GRPCStatus string

// Code is the status code, or an error when it names none.
func (g GRPCStatus) Code() (int, error) { return ParseGRPCCode(string(g)) }

// MarshalJSON writes a number as a number and a name as a string.
func (g GRPCStatus) MarshalJSON() ([]byte, error) {
	if _, err := strconv.Atoi(string(g)); err == nil {
		return []byte(g), nil
	}
	return json.Marshal(string(g))
}

// UnmarshalJSON reads a code name or number.
func (g *GRPCStatus) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*g = GRPCStatus(s)
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("grpcStatus: want a code name or number: %w", err)
	}
	*g = GRPCStatus(strconv.Itoa(n))
	return nil
}
