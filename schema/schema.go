// Package schema is bluegreen's etcd layout: the keys of a managed name, and
// the parsing and validation of every value. The plugin reads etcd through
// it, and any tool that writes etcd for bluegreen writes through it, so that a
// tool never writes a value the plugin would refuse.
//
// Each name is a directory under a prefix (by default /bluegreen/):
//
//	/bluegreen/app.example.org/active   blue | green
//	/bluegreen/app.example.org/blue     10.0.1.100,10.0.1.101 (addresses) or app-v1.example.net (a hostname)
//	/bluegreen/app.example.org/green    as blue
//	/bluegreen/app.example.org/ttl      seconds, optional
//	/bluegreen/app.example.org/canary   0 to 100, optional: percent of clients sent to the idle colour
//	/bluegreen/app.example.org/check    tcp://:PORT, http://:PORT/PATH or https://:PORT/PATH, optional
//
// It needs nothing but the standard library.
package schema

import (
	"errors"
	"fmt"
	"strings"
)

// The fields of a name: the last element of each of its keys.
const (
	FieldActive = "active"
	FieldBlue   = "blue"
	FieldGreen  = "green"
	FieldTTL    = "ttl"
	FieldCanary = "canary"
	FieldCheck  = "check"
)

// Fields lists every field, in the order the layout documents them.
var Fields = []string{FieldActive, FieldBlue, FieldGreen, FieldTTL, FieldCanary, FieldCheck}

// ErrUnknownField is the error of a key whose field is none of Fields: most
// likely a typo, such as .../actve for .../active.
var ErrUnknownField = errors.New("unknown field, want " + strings.Join(Fields[:len(Fields)-1], ", ") + " or " + Fields[len(Fields)-1])

// Key is the etcd key of one field of name (lowercase, without a trailing
// dot) under prefix (ending in "/").
func Key(prefix, name, field string) string { return prefix + name + "/" + field }

// ParseKey splits PREFIX/NAME/FIELD into the name, lowercase and without a
// trailing dot, and the field, which may be one this version does not know.
func ParseKey(prefix, key string) (name, field string, err error) {
	rest, ok := strings.CutPrefix(key, prefix)
	i := strings.LastIndexByte(rest, '/')
	if !ok || i < 0 {
		return "", "", fmt.Errorf("key %q is not %sNAME/FIELD", key, prefix)
	}
	name, field = rest[:i], rest[i+1:]
	if err := ValidateName(name); err != nil {
		return "", "", fmt.Errorf("key %q: bad name: %w", key, err)
	}
	return name, field, nil
}

// ValidateName accepts a name as the layout writes it: lowercase
// letter-digit-hyphen labels (underscores too, for service names), without a
// trailing dot.
func ValidateName(name string) error { return validateHostname(name) }

// Validate reports whether value may be stored in field: nil exactly when
// the plugin would take it. An unknown field is ErrUnknownField.
func Validate(field, value string) error {
	var err error
	switch field {
	case FieldActive:
		_, err = ParseColour(value)
	case FieldBlue, FieldGreen:
		_, err = ParseTarget(value)
	case FieldTTL:
		_, err = ParseTTL(value)
	case FieldCanary:
		_, err = ParseCanary(value)
	case FieldCheck:
		_, err = ParseCheck(value)
	default:
		return ErrUnknownField
	}
	return err
}
