package schema

import (
	"errors"
	"fmt"
	"iter"
	"net"
	"strconv"
	"strings"
)

// Target is what one colour of a name resolves to: addresses, or one
// hostname answered as a CNAME.
type Target struct {
	Raw   string // as stored in etcd, surrounding space trimmed
	A     []net.IP
	AAAA  []net.IP
	CNAME string // fully qualified, lowercase; empty when the target is addresses
}

// Set reports whether t holds a target at all.
func (t Target) Set() bool { return t.Raw != "" }

// Addresses lists t's addresses as strings, IPv4 first.
func (t Target) Addresses() []string {
	out := make([]string, 0, len(t.A)+len(t.AAAA))
	for _, ip := range t.A {
		out = append(out, ip.String())
	}
	for _, ip := range t.AAAA {
		out = append(out, ip.String())
	}
	return out
}

// IPs yields the target's addresses, A then AAAA, as Addresses does, but
// without making a string of each.
func (t Target) IPs() iter.Seq[net.IP] {
	return func(yield func(net.IP) bool) {
		for _, ips := range [2][]net.IP{t.A, t.AAAA} {
			for _, ip := range ips {
				if !yield(ip) {
					return
				}
			}
		}
	}
}

// ParseTarget reads "10.0.1.100,2001:db8::1" or "app-v2.example.net". A
// hostname may come as written in zone files too: with a trailing dot, in
// any case.
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	t := Target{Raw: s}
	if s == "" {
		return t, errors.New("empty target, want addresses or a hostname")
	}
	if len(s) > MaxValueLen {
		return t, tooLong(s)
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxAddresses {
		return t, fmt.Errorf("%d addresses, want at most %d", len(parts), MaxAddresses)
	}
	if len(parts) == 1 && net.ParseIP(s) == nil {
		host := strings.ToLower(strings.TrimSuffix(s, "."))
		if err := validateHostname(host); err != nil {
			return t, err
		}
		t.CNAME = host + "."
		return t, nil
	}
	for _, p := range parts {
		ip := net.ParseIP(strings.TrimSpace(p))
		switch {
		case strings.TrimSpace(p) == "":
			return t, fmt.Errorf("%s has an empty address: one comma too many", Quote(s))
		case ip == nil:
			return t, fmt.Errorf("%s is not an IP address (a hostname target must stand alone)", Quote(p))
		case ip.IsUnspecified() || ip.IsMulticast() || ip.Equal(net.IPv4bcast):
			return t, fmt.Errorf("%s is not an address a client can connect to (unspecified, broadcast or multicast)", ip)
		case ip.To4() != nil:
			t.A = append(t.A, ip.To4())
		default:
			t.AAAA = append(t.AAAA, ip)
		}
	}
	return t, nil
}

// validateHostname accepts lowercase letter-digit-hyphen names (underscores
// too, for service names), without a trailing dot, no label starting or
// ending with a hyphen; an all-numeric last label is rejected so that a
// mistyped address such as 10.0.1.300 is not taken for a name.
func validateHostname(s string) error {
	if len(s) > 253 {
		return fmt.Errorf("%s is longer than 253 characters", Quote(s))
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%s is not a hostname: empty or over-long label", Quote(s))
		}
		for _, r := range l {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
				return fmt.Errorf("%s is not a hostname: %q is not a lowercase letter, digit, hyphen or underscore", Quote(s), r)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%s is not a hostname: label %q starts or ends with a hyphen", Quote(s), l)
		}
	}
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return fmt.Errorf("%s is neither an IP address nor a hostname", Quote(s))
	}
	return nil
}
