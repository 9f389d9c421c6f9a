package k6

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// marshalJS encodes v as JSON that is safe to embed in JavaScript source
// and in YAML block scalars: HTML-escaped (<, >, &), U+2028 and U+2029
// escaped, and every other non-ASCII rune written as \u escapes, so the
// text is pure printable ASCII.
func marshalJS(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(true)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return asciiOnly(b), nil
}

// marshalPlain encodes v as indented JSON with a final newline.
func marshalPlain(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return asciiOnly(buf.Bytes()), nil
}

// asciiOnly rewrites non-ASCII runes (which in JSON output appear only in
// strings) and DEL as \u escapes, with surrogate pairs above U+FFFF.
func asciiOnly(b []byte) []byte {
	ascii := true
	for _, c := range b {
		if c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return b
	}
	var out bytes.Buffer
	for _, r := range string(b) {
		switch {
		case r < 0x7f:
			out.WriteRune(r)
		case r <= 0xffff:
			fmt.Fprintf(&out, `\u%04x`, r)
		default:
			r -= 0x10000
			fmt.Fprintf(&out, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		}
	}
	return out.Bytes()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
