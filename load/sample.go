package load

import "time"

// Sample is one request: when it started and ended, and how it went.
type Sample struct {
	// Start is when the request began to be written on an established
	// connection; End is when its response was read in full (or it failed).
	Start, End time.Time
	// Request is the index of the request in the mix.
	Request int
	// Status is the response's status code; 0 when there was no response
	// (and for gRPC calls).
	Status int
	// GRPC marks a gRPC call; GRPCCode is then its status code
	// (google.golang.org/grpc/codes: 0 is OK, 14 UNAVAILABLE, ...), the
	// client's own when the call got no status from the server.
	GRPC     bool
	GRPCCode int
	// Failed is k6's http_req_failed: no response, or a status other than
	// the expected one (the request's expect.status, or 200-399); for a
	// gRPC call, a status other than the expected one (expect.grpcStatus,
	// or OK).
	Failed bool
	// ChecksPassed of ChecksTotal checks passed (status, then each
	// bodyContains).
	ChecksPassed, ChecksTotal int
	// Err is the transport error, when there was one.
	Err error
}

// Duration is the request's duration.
func (s *Sample) Duration() time.Duration { return s.End.Sub(s.Start) }
