package k6opts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The options are first decoded into generic JSON values (nil, bool,
// json.Number, string, []any, map[string]any), then converted field by
// field, so every problem can name its path.

// decodeJSON decodes one JSON document, keeping numbers as json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON document")
	}
	return v, nil
}

// describe names a JSON value's type for a message, with the value when it
// is short.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean (" + strconv.FormatBool(x) + ")"
	case json.Number:
		return "a number (" + x.String() + ")"
	case string:
		if len(x) > 40 {
			return "a string"
		}
		return "a string (" + strconv.Quote(x) + ")"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func typeError(want string, got any) error {
	return fmt.Errorf("expected %s, got %s", want, describe(got))
}

func toBool(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, typeError("true or false", v)
	}
	return b, nil
}

func toString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", typeError("a string", v)
	}
	return s, nil
}

// toInt accepts a JSON number with an integral value ("3", "3.0", "1e3").
func toInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, typeError("a whole number", v)
	}
	if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, typeError("a whole number", v)
	}
	return int64(f), nil
}

func toNumber(v any) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, typeError("a number", v)
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil {
		return 0, typeError("a number", v)
	}
	return f, nil
}

// toDuration reads a duration as Duration.UnmarshalJSON does: a string
// such as "30s", or a number of milliseconds.
func toDuration(v any) (Duration, error) {
	switch v.(type) {
	case string, json.Number:
	default:
		return 0, typeError(`a duration (a string such as "30s", or milliseconds)`, v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	var d Duration
	if err := d.UnmarshalJSON(b); err != nil {
		return 0, err
	}
	return d, nil
}

func toObject(v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, typeError("an object", v)
	}
	return m, nil
}

func toList(v any) ([]any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, typeError("a list", v)
	}
	return l, nil
}

// toStrings reads a list of strings.
func toStrings(v any) ([]string, error) {
	l, err := toList(v)
	if err != nil {
		return nil, typeError("a list of strings", v)
	}
	out := make([]string, len(l))
	for i, x := range l {
		if out[i], err = toString(x); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
	}
	return out, nil
}

// toStringMap reads an object whose values are all strings.
func toStringMap(v any) (map[string]string, error) {
	m, err := toObject(v)
	if err != nil {
		return nil, typeError("an object of strings", v)
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		if out[k], err = toString(m[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", strconv.Quote(k), err)
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// quoteList writes names as "a", "b" or "c".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
