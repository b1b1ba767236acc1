package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxTTL is the largest TTL RFC 2181 allows.
const MaxTTL = 1<<31 - 1

// ParseTTL reads a TTL in whole seconds.
func ParseTTL(s string) (uint32, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > MaxTTL {
		return 0, fmt.Errorf("%q is not a TTL, want whole seconds from 0 to %d", s, MaxTTL)
	}
	return uint32(n), nil
}

// ParseCanary reads the share of clients, in percent, sent to the idle colour.
func ParseCanary(s string) (uint8, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n > 100 {
		return 0, fmt.Errorf("%q is not a canary share, want a whole percentage from 0 to 100", s)
	}
	return uint8(n), nil
}
