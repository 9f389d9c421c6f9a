//go:build !linux

package portowner

func lookup(int) ([]Socket, error) { return nil, ErrUnsupported }
