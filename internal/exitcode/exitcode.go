// Package exitcode holds faultline's documented process exit codes. Every
// outcome a user or CI script may branch on has its own code; the README
// documents the same table.
package exitcode

// Exit codes of the faultline command.
const (
	// OK: the command did what was asked; a run passed.
	OK = 0
	// Internal: an unexpected error inside faultline (a bug).
	Internal = 1
	// Usage: bad flags or arguments.
	Usage = 2
	// Invalid: a scenario failed validation (vet, compile).
	Invalid = 3
	// SLOBreach: a run ended and at least one SLO was not met.
	SLOBreach = 4
	// Regression: SLOs were met, but the run is worse than its golden baseline.
	Regression = 5
	// Aborted: the run was interrupted (signal, abort condition) before it could be judged.
	Aborted = 6
	// Infrastructure: the run could not be carried out (cluster, k6, target or injector failure).
	Infrastructure = 7
)

// Error is an error that carries the exit code the command should end with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// With wraps err so that the command exits with code.
func With(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}
