package schema

import (
	"errors"
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

// String is the check as it may be shown: without its query or fragment,
// which may hold a token.
func (c Check) String() string { return RedactURL(c.Raw) }

const checkForms = "want tcp://:PORT, http://:PORT/PATH or https://:PORT/PATH"

// ParseCheck reads the value of a check key. It names no host: every address
// of the name is probed. Its errors never repeat a password, a query or a
// fragment: they reach logs and the TXT state.
func ParseCheck(s string) (Check, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxValueLen {
		return Check{}, tooLong(RedactURL(s))
	}
	shown := Quote(RedactURL(s))
	u, err := url.Parse(s)
	if (err == nil && u.User != nil) || strings.Contains(s, "@") {
		return Check{}, errors.New("a check takes no user or password, " + checkForms)
	}
	if err != nil || u.Opaque != "" {
		return Check{}, fmt.Errorf("%s is not a check, %s", shown, checkForms)
	}
	if u.Fragment != "" {
		return Check{}, fmt.Errorf("check %s: a check takes no fragment (#...), it is never sent", shown)
	}
	if u.Scheme != "tcp" && u.Scheme != "http" && u.Scheme != "https" {
		return Check{}, fmt.Errorf("check %s: scheme %s is not tcp, http or https", shown, Quote(u.Scheme))
	}
	if u.Hostname() != "" {
		return Check{}, fmt.Errorf("check %s names a host; leave it out (%s://:%s), each address of the name is probed", shown, u.Scheme, u.Port())
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return Check{}, fmt.Errorf("check %s: want a port from 1 to 65535", shown)
	}
	c := Check{Raw: s, Scheme: u.Scheme, Port: u.Port()}
	if u.Scheme == "tcp" {
		if u.Path != "" || u.RawQuery != "" {
			return Check{}, fmt.Errorf("check %s: a tcp check takes no path or query", shown)
		}
		return c, nil
	}
	c.Path = u.RequestURI()
	return c, nil
}
