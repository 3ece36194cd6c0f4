package api

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// byteRange is the part of a blob a GET answers with: length bytes from off.
type byteRange struct {
	off, length int64
}

// contentRange is the Content-Range header of a 206 answer with r.
func (r byteRange) contentRange(size int64) string {
	return fmt.Sprintf("bytes %d-%d/%d", r.off, r.off+r.length-1, size)
}

// errUnsatisfiable is a Range header the server answers 416: its one range
// starts past the end, asks for a suffix of 0 bytes, or is malformed.
var errUnsatisfiable = errors.New("range not satisfiable")

// parseRange reads a Range header (RFC 9110 §14.2) for a blob of size bytes.
// It returns the whole blob and partial false when there is no header, a
// unit other than bytes, or several ranges (answered with the whole blob);
// one satisfiable range gives partial true, with its end clamped to the
// size. An unsatisfiable or malformed byte range is errUnsatisfiable.
func parseRange(header string, size int64) (r byteRange, partial bool, err error) {
	whole := byteRange{0, size}
	unit, spec, ok := strings.Cut(header, "=")
	if header == "" || !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return whole, false, nil
	}
	if strings.Contains(spec, ",") {
		return whole, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return byteRange{}, false, errUnsatisfiable
	}
	if first == "" { // bytes=-n: the last n bytes
		n, ok := parsePos(last)
		if !ok || n == 0 || size == 0 {
			return byteRange{}, false, errUnsatisfiable
		}
		n = min(n, size)
		return byteRange{size - n, n}, true, nil
	}
	a, ok := parsePos(first)
	if !ok || a >= size {
		return byteRange{}, false, errUnsatisfiable
	}
	b := size - 1
	if last != "" {
		if b, ok = parsePos(last); !ok || b < a {
			return byteRange{}, false, errUnsatisfiable
		}
		b = min(b, size-1)
	}
	return byteRange{a, b - a + 1}, true, nil
}

// parsePos reads a non-negative decimal position: digits only.
func parsePos(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
