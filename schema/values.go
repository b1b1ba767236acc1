package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxTTL is the largest TTL RFC 2181 allows: the most a Corefile's max_ttl
// may allow.
const MaxTTL = 1<<31 - 1

// ParseTTL reads a TTL in whole seconds, at most max.
func ParseTTL(s string, max uint32) (uint32, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > MaxTTL {
		return 0, fmt.Errorf("%s is not a TTL, want whole seconds from 0 to %d", Quote(s), max)
	}
	if n > uint64(max) {
		return 0, fmt.Errorf("ttl %d is above the maximum of %d seconds: clients would take that long to follow a rollback", n, max)
	}
	return uint32(n), nil
}

// ParseCanary reads the share of clients, in percent, sent to the idle colour.
func ParseCanary(s string) (uint8, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n > 100 {
		return 0, fmt.Errorf("%s is not a canary share, want a whole percentage from 0 to 100", Quote(s))
	}
	return uint8(n), nil
}
