package schema

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTrial(t *testing.T) {
	until := time.Date(2026, 11, 24, 12, 13, 0, 0, time.UTC)
	for in, want := range map[string]Trial{
		"green until=2026-11-24T12:13:00Z":                {Colour: Green, Until: until},
		" blue  until=2026-11-24T12:13:00Z ttl=5\n":       {Colour: Blue, Until: until, TTL: 5, HasTTL: true},
		"green ttl=0 until=2026-11-24T13:13:00+01:00":     {Colour: Green, Until: until, HasTTL: true},
		"blue until=2026-11-24T12:13:00Z canary=30":       {Colour: Blue, Until: until, Canary: 30, HasCanary: true},
		"green canary=0 ttl=5 until=2026-11-24T12:13:00Z": {Colour: Green, Until: until, TTL: 5, HasTTL: true, HasCanary: true},
	} {
		got, err := ParseTrial(in, 7, DefaultMaxTTL)
		if err != nil || got != want {
			t.Errorf("ParseTrial(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, err := ParseTrial(got.String(), 7, DefaultMaxTTL); err != nil || again != got {
			t.Errorf("ParseTrial(%q) = %+v, %v; want what String wrote", got.String(), again, err)
		}
	}
	for in, want := range map[string]string{
		"":                                 "empty trial",
		"Green until=2026-11-24T12:13:00Z": `"Green" is not a colour`,
		"green":                            "says no until=",
		"green until=tomorrow":             "is not an RFC 3339 time",
		"green until=2026-11-24T12:13:00Z ttl=5s":            "is not a TTL",
		"green until=2026-11-24T12:13:00Z ttl=7200":          "above the maximum of 3600 seconds",
		"green until=2026-11-24T12:13:00Z ttl=5 ttl=6":       `"ttl=6" is not understood`,
		"green until=2026-11-24T12:13:00Z confirm":           `"confirm" is not understood`,
		"green until=2026-11-24T12:13:00Z canary=101":        "is not a canary share",
		"green until=2026-11-24T12:13:00Z canary=1 canary=2": `"canary=2" is not understood`,
		"green until=" + strings.Repeat("9", MaxValueLen):    "longer than 4096 bytes",
	} {
		if _, err := ParseTrial(in, 7, DefaultMaxTTL); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTrial(%.60q) error = %v, want one containing %q", in, err, want)
		}
	}
	if _, err := ParseTrial("green until=2026-11-24T12:13:00Z", 0, DefaultMaxTTL); !errors.Is(err, ErrTrialNoLease) {
		t.Errorf("a trial without a lease: error %v, want ErrTrialNoLease", err)
	}
}
