package schema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Trial is the value of a trial key: a colour answered in place of the
// active one while the key lives. The key is put on an etcd lease; when the
// lease expires etcd deletes the key and the name goes back to its active
// colour by itself. Written as "green until=2026-11-24T12:13:00Z", with
// " ttl=5" when the trial also lowers the name's TTL and " canary=30" when
// it also sends that share of clients to the other colour (a release's
// canary step, which reverts with the lease as a flip does).
type Trial struct {
	Colour    Colour
	Until     time.Time // when the lease is due to expire, as the writer computed it
	TTL       uint32    // the TTL answered during the trial, when HasTTL
	HasTTL    bool
	Canary    uint8 // the canary share during the trial, when HasCanary
	HasCanary bool
}

// ErrTrialNoLease is why a trial key without a lease is refused: nothing
// would ever end it.
var ErrTrialNoLease = errors.New("the trial key has no lease, so it would never end: put it on a lease (bgctl switch --confirm-within does)")

const trialForm = "want COLOUR until=TIME [ttl=SECONDS] [canary=PERCENT], as \"green until=2026-11-24T12:13:00Z ttl=5\""

// ParseTrial reads the value of a trial key put on lease (0 for none), with
// a ttl of at most maxTTL.
func ParseTrial(s string, lease int64, maxTTL uint32) (Trial, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxValueLen {
		return Trial{}, tooLong(s)
	}
	words := strings.Fields(s)
	if len(words) == 0 {
		return Trial{}, errors.New("empty trial, " + trialForm)
	}
	c, err := ParseColour(words[0])
	if err != nil {
		return Trial{}, fmt.Errorf("trial %s: %w", Quote(s), err)
	}
	t := Trial{Colour: c}
	for _, w := range words[1:] {
		k, v, _ := strings.Cut(w, "=")
		switch {
		case k == "until" && t.Until.IsZero():
			if t.Until, err = time.Parse(time.RFC3339, v); err != nil {
				return Trial{}, fmt.Errorf("trial %s: until %s is not an RFC 3339 time, %s", Quote(s), Quote(v), trialForm)
			}
			t.Until = t.Until.UTC() // comparable with ==, and shown as written by String
		case k == "ttl" && !t.HasTTL:
			if t.TTL, err = ParseTTL(v, maxTTL); err != nil {
				return Trial{}, fmt.Errorf("trial %s: %w", Quote(s), err)
			}
			t.HasTTL = true
		case k == "canary" && !t.HasCanary:
			if t.Canary, err = ParseCanary(v); err != nil {
				return Trial{}, fmt.Errorf("trial %s: %w", Quote(s), err)
			}
			t.HasCanary = true
		default:
			return Trial{}, fmt.Errorf("trial %s: %s is not understood, %s", Quote(s), Quote(w), trialForm)
		}
	}
	if t.Until.IsZero() {
		return Trial{}, fmt.Errorf("trial %s says no until=, %s", Quote(s), trialForm)
	}
	if lease == 0 {
		return Trial{}, ErrTrialNoLease
	}
	return t, nil
}

// String is the trial as a trial key holds it.
func (t Trial) String() string {
	s := t.Colour.String() + " until=" + t.Until.UTC().Format(time.RFC3339)
	if t.HasTTL {
		s += " ttl=" + strconv.FormatUint(uint64(t.TTL), 10)
	}
	if t.HasCanary {
		s += " canary=" + strconv.FormatUint(uint64(t.Canary), 10)
	}
	return s
}
