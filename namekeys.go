package bluegreen

import (
	"maps"
	"unique"

	"github.com/bluegreen-dns/bluegreen/schema"
)

// nameKeys is one name's keys as the store holds them: for each field, what
// etcd holds now and the last value of it that parsed, so that a bad put
// leaves the name answering what it answered before. It is only data: the
// store changes it, resolve reads it.
type nameKeys struct {
	// name is the name, one string that the store's maps and snapshots
	// share: each key put makes a string of its own, and ten thousand
	// copies of the names are more for every garbage collection to mark.
	name    string
	active  field[schema.Colour]
	targets [2]field[schema.Target]
	ttl     field[uint32]
	canary  field[uint8]
	check   field[unique.Handle[schema.Check]] // interned: one word in every name, and thousands of names with one check share it
	trial   field[schema.Trial]                // never a last good value: a trial refused is over
	unknown map[string]field[struct{}]

	probes  []probeKey // the probes the name watches, one per address checked
	watcher uint32     // the name's number in its store's probeNames while it watches any

	// served is the colour the name was answered with last, while serving:
	// a name keeps it while its active key names a colour without a target.
	served  schema.Colour
	serving bool
}

type field[T any] struct {
	rev     int64  // the key's mod revision, or the revision that deleted it
	err     string // why etcd's value is not taken; "" when it is
	value   T
	ok      bool // value holds the last value that parsed
	present bool // etcd holds the key
}

// put records the value etcd holds at revision rev, keeping the last good
// value when it does not parse.
func (f *field[T]) put(value string, rev int64, parse func(string) (T, error)) {
	f.present, f.rev = true, rev
	v, err := parse(value)
	if err != nil {
		f.err = err.Error()
		return
	}
	f.ok, f.value, f.err = true, v, ""
}

// del records that etcd deleted the key at revision rev. With keep, the
// last good value stays, for resolve to use if the name answers it.
func (f *field[T]) del(rev int64, keep bool) {
	if !keep {
		*f = field[T]{}
	}
	f.present, f.rev, f.err = false, rev, ""
}

// usable reports whether colour c has a target to answer: one etcd holds,
// or, for the colour the name answers, the last one it held. Deleting the
// active key retires a name; deleting its target by mistake does not.
func (k *nameKeys) usable(c schema.Colour) bool {
	t := &k.targets[c]
	return t.ok && (t.present || (k.serving && k.served == c))
}

// empty reports whether etcd holds none of the name's keys.
func (k *nameKeys) empty() bool {
	return !k.active.present && !k.targets[schema.Blue].present && !k.targets[schema.Green].present &&
		!k.ttl.present && !k.canary.present && !k.check.present && !k.trial.present && len(k.unknown) == 0
}

// rev is the newest revision that changed one of the name's keys.
func (k *nameKeys) rev() int64 {
	r := max(k.active.rev, k.targets[schema.Blue].rev, k.targets[schema.Green].rev, k.ttl.rev, k.canary.rev, k.check.rev, k.trial.rev)
	for _, f := range k.unknown {
		r = max(r, f.rev)
	}
	return r
}

// fieldRev is the mod revision of the key of field as etcd holds it, 0 when
// etcd holds no such key.
func (k *nameKeys) fieldRev(name string) int64 {
	var present bool
	var rev int64
	switch name {
	case schema.FieldActive:
		present, rev = k.active.present, k.active.rev
	case schema.FieldBlue, schema.FieldGreen:
		c, _ := schema.ParseColour(name)
		present, rev = k.targets[c].present, k.targets[c].rev
	case schema.FieldTTL:
		present, rev = k.ttl.present, k.ttl.rev
	case schema.FieldCanary:
		present, rev = k.canary.present, k.canary.rev
	case schema.FieldCheck:
		present, rev = k.check.present, k.check.rev
	case schema.FieldTrial:
		present, rev = k.trial.present, k.trial.rev
	default:
		f := k.unknown[name]
		present, rev = f.present, f.rev
	}
	if !present {
		return 0
	}
	return rev
}

// presentFields lists the fields etcd holds a key of.
func (k *nameKeys) presentFields() []string {
	var out []string
	for _, f := range schema.Fields {
		if k.fieldRev(f) != 0 {
			out = append(out, f)
		}
	}
	for f := range maps.Keys(k.unknown) {
		out = append(out, f)
	}
	return out
}
