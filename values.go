package bluegreen

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// colour is one of the two environments a name switches between.
type colour uint8

const (
	blue colour = iota
	green
)

var colours = [2]colour{blue, green}

// other is the colour that is not c.
func (c colour) other() colour { return 1 - c }

func (c colour) String() string {
	if c == green {
		return "green"
	}
	return "blue"
}

func parseColour(s string) (colour, error) {
	switch s {
	case "blue":
		return blue, nil
	case "green":
		return green, nil
	}
	return blue, fmt.Errorf("%q is not a colour, want blue or green", s)
}

// target is what one colour of a name resolves to: addresses, or one
// hostname answered as a CNAME.
type target struct {
	raw   string // as stored in etcd, for the TXT state
	a     []net.IP
	aaaa  []net.IP
	cname string // fully qualified; empty when the target is addresses
}

func (t target) set() bool { return t.raw != "" }

// parseTarget reads "10.0.1.100,2001:db8::1" or "app-v2.example.net". A
// hostname may come as written in zone files too: with a trailing dot, in
// any case.
func parseTarget(s string) (target, error) {
	t := target{raw: s}
	if s == "" {
		return t, errors.New("empty target, want addresses or a hostname")
	}
	parts := strings.Split(s, ",")
	if len(parts) == 1 && net.ParseIP(s) == nil {
		host := strings.ToLower(strings.TrimSuffix(s, "."))
		if err := checkHostname(host); err != nil {
			return t, err
		}
		t.cname = dns.Fqdn(host)
		return t, nil
	}
	for _, p := range parts {
		ip := net.ParseIP(strings.TrimSpace(p))
		switch {
		case ip == nil:
			return t, fmt.Errorf("%q is not an IP address (a hostname target must stand alone)", p)
		case ip.To4() != nil:
			t.a = append(t.a, ip.To4())
		default:
			t.aaaa = append(t.aaaa, ip)
		}
	}
	return t, nil
}

// checkHostname accepts lowercase letter-digit-hyphen names (underscores too,
// for service names), without a trailing dot; an all-numeric last label is
// rejected so that a mistyped address such as 10.0.1.300 is not taken for a name.
func checkHostname(s string) error {
	if len(s) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", s)
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%q is not a hostname: empty or over-long label", s)
		}
		for _, r := range l {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
				return fmt.Errorf("%q is not a lowercase hostname", s)
			}
		}
	}
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return fmt.Errorf("%q is neither an IP address nor a hostname", s)
	}
	return nil
}

// maxTTL is the largest TTL RFC 2181 allows.
const maxTTL = 1<<31 - 1

func parseTTL(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > maxTTL {
		return 0, fmt.Errorf("%q is not a TTL, want whole seconds from 0 to %d", s, maxTTL)
	}
	return uint32(n), nil
}

// parseCanary reads the share of clients, in percent, sent to the idle colour.
func parseCanary(s string) (uint8, error) {
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n > 100 {
		return 0, fmt.Errorf("%q is not a canary share, want a whole percentage from 0 to 100", s)
	}
	return uint8(n), nil
}

// The keys of one name, under PREFIX/NAME/.
const (
	fieldActive = "active"
	fieldBlue   = "blue"
	fieldGreen  = "green"
	fieldTTL    = "ttl"
	fieldCanary = "canary"
	fieldCheck  = "check"
)

// splitKey splits PREFIX/NAME/FIELD into the fully qualified name and the
// field, which may be one this version does not know.
func splitKey(prefix, key string) (name, field string, err error) {
	rest, ok := strings.CutPrefix(key, prefix)
	i := strings.LastIndexByte(rest, '/')
	if !ok || i < 0 {
		return "", "", fmt.Errorf("key %q is not %sNAME/FIELD", key, prefix)
	}
	name, field = rest[:i], rest[i+1:]
	if err := checkHostname(name); err != nil {
		return "", "", fmt.Errorf("key %q: bad name: %w", key, err)
	}
	return dns.Fqdn(name), field, nil
}
