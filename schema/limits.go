package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits on what one key may hold. A value past them is refused like any
// bad value, so that no put makes an answer, a log line or a TXT state grow
// without bound.
const (
	// MaxAddresses is the most addresses one colour may have: 64 A records
	// answer in 1,064 bytes, within the 1,232 a UDP answer is held to.
	MaxAddresses = 64
	// MaxValueLen is the longest value, in bytes: room for 64 IPv6
	// addresses written out in full.
	MaxValueLen = 4096
	// DefaultMaxTTL is the largest ttl taken unless the Corefile's max_ttl
	// says otherwise: a rollback reaches every client within one TTL, so a
	// day-long TTL is a day-long rollback.
	DefaultMaxTTL = 3600
	// quoteLen is how much of a value an error or log line repeats.
	quoteLen = 100
)

// Quote is s quoted as Go would, cut to about 100 bytes with a marker
// saying how long it was: errors and logs repeat values, and a value may be
// a megabyte.
func Quote(s string) string {
	head, marker := cut(s)
	return strconv.Quote(head) + marker
}

// Cut is s cut to about 100 bytes, with the same marker.
func Cut(s string) string {
	head, marker := cut(s)
	return head + marker
}

func cut(s string) (head, marker string) {
	if len(s) <= quoteLen {
		return s, ""
	}
	n := quoteLen
	for n > 0 && s[n]&0xC0 == 0x80 { // never split a UTF-8 character
		n--
	}
	return s[:n], fmt.Sprintf("... (%d bytes)", len(s))
}

// tooLong is the error of a value longer than MaxValueLen.
func tooLong(s string) error {
	return fmt.Errorf("%s is longer than %d bytes", Quote(s), MaxValueLen)
}

// RedactURL is s with what may be a secret left out: the user and password,
// the query and the fragment. It works on any string, URL or not, so that a
// value that does not parse is redacted too.
func RedactURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + s[i:i+1] + "REDACTED"
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		start := 0 // the user and password start after the scheme, if one comes first
		if j := strings.Index(s, "://"); j >= 0 && j < strings.IndexByte(s, '@') {
			start = j + 3
		}
		s = s[:start] + "REDACTED" + s[i:]
	}
	return s
}
