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
//	/bluegreen/app.example.org/trial    green until=2026-11-24T12:13:00Z [ttl=5] [canary=30], on a lease: answered in place of active while the lease lives
//
// It needs nothing but the standard library.
package schema

import (
	"errors"
	"fmt"
	"slices"
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
	FieldTrial  = "trial"
)

// Fields lists every field, in the order the layout documents them.
var Fields = []string{FieldActive, FieldBlue, FieldGreen, FieldTTL, FieldCanary, FieldCheck, FieldTrial}

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
		return "", "", fmt.Errorf("key %s is not %sNAME/FIELD", Quote(key), prefix)
	}
	name, field = rest[:i], rest[i+1:]
	if err := ValidateName(name); err != nil {
		return "", "", fmt.Errorf("key %s: bad name: %w", Quote(key), err)
	}
	return name, field, nil
}

// ValidateName accepts a name as the layout writes it: lowercase
// letter-digit-hyphen labels (underscores too, for service names), without a
// trailing dot. A first label of blue, green or _bluegreen is refused: such
// a name is the preview or the state of the name below it, and managing it
// would hide that view.
func ValidateName(name string) error {
	if err := validateHostname(name); err != nil {
		return err
	}
	if first, parent, ok := strings.Cut(name, "."); ok && slices.Contains(ViewLabels, first) {
		return fmt.Errorf("%s is the %s view of %s, not a name to manage: pick a name whose first label is not %s", Quote(name), first, parent, strings.Join(ViewLabels, ", "))
	}
	return nil
}

// ViewLabels are the first labels of the names that show one managed name
// NAME: blue.NAME and green.NAME answer a colour, _bluegreen.NAME its state.
var ViewLabels = []string{FieldBlue, FieldGreen, StateLabel}

// StateLabel is the first label of the name whose TXT record is a name's
// state.
const StateLabel = "_bluegreen"

// Validate reports whether value may be stored in field, a trial on lease
// (0 for none): nil exactly when the plugin would take it with the default
// limits (a Corefile may allow longer TTLs). An unknown field is
// ErrUnknownField.
func Validate(field, value string, lease int64) error {
	var err error
	switch field {
	case FieldActive:
		_, err = ParseColour(value)
	case FieldBlue, FieldGreen:
		_, err = ParseTarget(value)
	case FieldTTL:
		_, err = ParseTTL(value, DefaultMaxTTL)
	case FieldCanary:
		_, err = ParseCanary(value)
	case FieldCheck:
		_, err = ParseCheck(value)
	case FieldTrial:
		_, err = ParseTrial(value, lease, DefaultMaxTTL)
	default:
		return ErrUnknownField
	}
	return err
}
