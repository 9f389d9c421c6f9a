package load

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// maxBody bounds the response body kept for bodyContains checks; the rest
// of a longer body is read and discarded.
const maxBody = 16 << 20

// h1conn is one keep-alive HTTP/1.1 connection of a VU.
type h1conn struct {
	nc    net.Conn
	br    *bufio.Reader
	used  bool      // a request was answered on it: a failure before any byte may be a stale keep-alive
	until time.Time // the deadline set on nc
}

var errMalformed = errors.New("malformed HTTP response")

// response is what the fast path reads of a response.
type response struct {
	status   int
	close    bool   // the server will close the connection
	location string // Location of a redirect
}

// readResponse reads one response from br. Interim 1xx responses are
// skipped. With keep, the body (up to maxBody) is appended to *body; else
// it is discarded. It returns whether any byte was read (for the stale
// keep-alive retry).
func readResponse(br *bufio.Reader, headOnly, keep bool, body *[]byte) (response, bool, error) {
	var resp response
	got := false
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			got = true
		}
		if err != nil {
			return resp, got, err
		}
		// "HTTP/1.1 200 OK"
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
			return resp, got, fmt.Errorf("%w: status line %q", errMalformed, bytes.TrimSpace(line))
		}
		status, err := strconv.Atoi(string(line[9:12]))
		if err != nil || status < 100 {
			return resp, got, fmt.Errorf("%w: status line %q", errMalformed, bytes.TrimSpace(line))
		}
		resp = response{status: status, close: line[7] == '0'}
		length, chunked := int64(-1), false
		for {
			h, err := br.ReadSlice('\n')
			if err != nil {
				if errors.Is(err, bufio.ErrBufferFull) {
					return resp, got, fmt.Errorf("%w: a header line longer than %d bytes", errMalformed, br.Size())
				}
				return resp, got, err
			}
			h = bytes.TrimRight(h, "\r\n")
			if len(h) == 0 {
				break
			}
			name, value, ok := bytes.Cut(h, []byte(":"))
			if !ok {
				return resp, got, fmt.Errorf("%w: header line %q", errMalformed, h)
			}
			value = bytes.TrimSpace(value)
			switch {
			case asciiEqualFold(name, "content-length"):
				n, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || n < 0 {
					return resp, got, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
				}
				length = n
			case asciiEqualFold(name, "transfer-encoding"):
				chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
			case asciiEqualFold(name, "connection"):
				v := bytes.ToLower(value)
				if bytes.Contains(v, []byte("close")) {
					resp.close = true
				} else if bytes.Contains(v, []byte("keep-alive")) {
					resp.close = false
				}
			case asciiEqualFold(name, "location"):
				resp.location = string(value)
			}
		}
		if status < 200 && status != 101 {
			continue // interim response: the real one follows
		}
		if headOnly || status == 204 || status == 304 || status == 101 {
			return resp, got, nil
		}
		switch {
		case chunked:
			err = readChunked(br, keep, body)
		case length >= 0:
			err = readN(br, length, keep, body)
		default:
			// Neither: the body runs to the end of the connection.
			resp.close = true
			err = readN(br, -1, keep, body)
		}
		return resp, got, err
	}
}

// readN reads n bytes of body (n < 0: to EOF), keeping up to maxBody of
// them in *body when keep is set. A body cut short is io.ErrUnexpectedEOF.
func readN(br *bufio.Reader, n int64, keep bool, body *[]byte) error {
	remaining := n
	for remaining != 0 {
		if !keep || len(*body) >= maxBody {
			if remaining < 0 {
				_, err := io.Copy(io.Discard, br)
				return err
			}
			d, err := br.Discard(int(min(remaining, 1<<30)))
			remaining -= int64(d)
			if err != nil {
				return io.ErrUnexpectedEOF
			}
			continue
		}
		if cap(*body)-len(*body) < 4096 {
			grown := make([]byte, len(*body), max(8192, 2*cap(*body)))
			copy(grown, *body)
			*body = grown
		}
		buf := (*body)[len(*body):min(cap(*body), maxBody)]
		if remaining > 0 && int64(len(buf)) > remaining {
			buf = buf[:remaining]
		}
		m, err := br.Read(buf)
		*body = (*body)[:len(*body)+m]
		if remaining > 0 {
			remaining -= int64(m)
		}
		if err == io.EOF {
			if remaining < 0 {
				return nil
			}
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readChunked reads a chunked body and its trailers.
func readChunked(br *bufio.Reader, keep bool, body *[]byte) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if size == 0 {
			for { // trailers, then the empty line
				t, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if err := readN(br, size, keep, body); err != nil {
			return err
		}
		if _, err := br.Discard(2); err != nil { // CRLF after the chunk
			return err
		}
	}
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
