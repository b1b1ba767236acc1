package schema

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Check is how to probe each address of a name: the value of its check key,
// tcp://:PORT, http://:PORT/PATH or https://:PORT/PATH.
type Check struct {
	Raw    string
	Scheme string // tcp, http or https
	Port   string
	Path   string // with the query, for http and https
}

// ParseCheck reads the value of a check key. It names no host: every address
// of the name is probed.
func ParseCheck(s string) (Check, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if (err == nil && u.User != nil) || strings.Contains(s, "@") {
		// Never repeat a password: errors reach logs and the TXT state.
		return Check{}, fmt.Errorf("a check takes no user or password, want tcp://:PORT, http://:PORT/PATH or https://:PORT/PATH")
	}
	if err != nil || u.Opaque != "" || u.Fragment != "" {
		return Check{}, fmt.Errorf("%q is not a check, want tcp://:PORT, http://:PORT/PATH or https://:PORT/PATH", s)
	}
	if u.Scheme != "tcp" && u.Scheme != "http" && u.Scheme != "https" {
		return Check{}, fmt.Errorf("check %q: scheme %q is not tcp, http or https", s, u.Scheme)
	}
	if u.Hostname() != "" {
		return Check{}, fmt.Errorf("check %q names a host; leave it out (%s://:%s), each address of the name is probed", s, u.Scheme, u.Port())
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return Check{}, fmt.Errorf("check %q: want a port from 1 to 65535", s)
	}
	c := Check{Raw: s, Scheme: u.Scheme, Port: u.Port()}
	if u.Scheme == "tcp" {
		if u.Path != "" || u.RawQuery != "" {
			return Check{}, fmt.Errorf("check %q: a tcp check takes no path", s)
		}
		return c, nil
	}
	c.Path = u.RequestURI()
	return c, nil
}
