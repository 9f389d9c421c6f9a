package protos

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// FieldError is a message value that does not fit its type, at a path of
// JSON keys from the message's top ("items", "0", "sku").
type FieldError struct {
	Path []string
	Msg  string
}

func (e *FieldError) Error() string {
	if len(e.Path) == 0 {
		return e.Msg
	}
	return strings.Join(e.Path, ".") + ": " + e.Msg
}

// Marshal turns a scenario's message (protobuf's JSON mapping, as decoded
// from the scenario) into a message of type md, in its binary form ready to
// send. An error is a *FieldError.
func Marshal(md protoreflect.MessageDescriptor, msg map[string]any) (*dynamicpb.Message, error) {
	if err := Check(md, msg); err != nil {
		return nil, err
	}
	m := dynamicpb.NewMessage(md)
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, &FieldError{Msg: err.Error()}
	}
	if len(msg) > 0 {
		if err := protojson.Unmarshal(b, m); err != nil {
			return nil, &FieldError{Msg: plain(err)}
		}
	}
	return m, nil
}

// Check reports the first key of msg (in sorted order, depth first) that
// its message type md has no field for, or whose value does not fit the
// field, as a *FieldError.
func Check(md protoreflect.MessageDescriptor, msg map[string]any) error {
	return check(md, msg, nil)
}

func check(md protoreflect.MessageDescriptor, msg map[string]any, path []string) error {
	keys := make([]string, 0, len(msg))
	for k := range msg {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		at := append(slices.Clone(path), k)
		fd := field(md, k)
		if fd == nil {
			return &FieldError{Path: at, Msg: fmt.Sprintf("%s has no field %q (it has %s)", md.FullName(), k, fieldNames(md))}
		}
		v := msg[k]
		// Nested messages (not the well-known types, whose JSON forms are
		// special): look inside, so that the error points at the key.
		if fd.Kind() == protoreflect.MessageKind && !fd.IsMap() && !strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
			if fd.IsList() {
				if l, ok := v.([]any); ok {
					for i, e := range l {
						if sub, ok := e.(map[string]any); ok {
							if err := check(fd.Message(), sub, append(slices.Clone(at), fmt.Sprint(i))); err != nil {
								return err
							}
						}
					}
				}
			} else if sub, ok := v.(map[string]any); ok {
				if err := check(fd.Message(), sub, at); err != nil {
					return err
				}
				continue
			}
		}
		b, err := json.Marshal(map[string]any{k: v})
		if err != nil {
			return &FieldError{Path: at, Msg: err.Error()}
		}
		if err := protojson.Unmarshal(b, dynamicpb.NewMessage(md)); err != nil {
			return &FieldError{Path: at, Msg: fmt.Sprintf("field %s (%s): %s", fd.Name(), typeName(fd), plain(err))}
		}
	}
	return nil
}

// field finds a field by its proto name or JSON name, as protojson does.
func field(md protoreflect.MessageDescriptor, key string) protoreflect.FieldDescriptor {
	fs := md.Fields()
	if fd := fs.ByName(protoreflect.Name(key)); fd != nil {
		return fd
	}
	return fs.ByJSONName(key)
}

func fieldNames(md protoreflect.MessageDescriptor) string {
	fs := md.Fields()
	if fs.Len() == 0 {
		return "no fields"
	}
	names := make([]string, fs.Len())
	for i := range fs.Len() {
		names[i] = string(fs.Get(i).Name())
	}
	return strings.Join(names, ", ")
}

func typeName(fd protoreflect.FieldDescriptor) string {
	t := fd.Kind().String()
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		t = string(fd.Message().FullName())
	case protoreflect.EnumKind:
		t = string(fd.Enum().FullName())
	}
	switch {
	case fd.IsMap():
		return "map"
	case fd.IsList():
		return "repeated " + t
	}
	return t
}

// plain drops protojson's "proto: " prefix and its (syntax error) offsets.
func plain(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "proto:")
	s = strings.ReplaceAll(s, "\u00a0", " ")
	s = lineCol.ReplaceAllString(s, "")
	return strings.TrimSpace(s)
}

var lineCol = regexp.MustCompile(`\(line \d+:\d+\):\s*`)
