package schema

import (
	"fmt"
	"strings"
	"testing"
)

// A bad value is refused with a reason that repeats at most about 100
// bytes of it, however long it is.
func TestErrorsCutValues(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	for field, value := range map[string]string{
		FieldActive: huge,
		FieldBlue:   huge,
		FieldGreen:  "10.0.0.1," + huge,
		FieldTTL:    huge,
		FieldCanary: huge,
		FieldCheck:  "http://:80/" + huge,
		FieldTrial:  "green until=" + huge,
	} {
		err := Validate(field, value, 1)
		if err == nil {
			t.Errorf("%s: a 1 MB value was taken", field)
			continue
		}
		if len(err.Error()) > 300 {
			t.Errorf("%s: error of %d bytes: %.200s", field, len(err.Error()), err)
		}
	}
	if got := Quote(strings.Repeat("é", 80)); !strings.HasSuffix(got, "... (160 bytes)") || !strings.HasPrefix(got, `"éé`) {
		t.Errorf("Quote of 160 bytes = %s", got)
	}
	if got := Quote("a\x00b"); got != `"a\x00b"` {
		t.Errorf("Quote = %s, want control bytes escaped", got)
	}
}

func TestTargetLimits(t *testing.T) {
	addrs := func(n int) string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf("10.0.%d.%d", i/256, i%256+1))
		}
		return strings.Join(s, ",")
	}
	if tg, err := ParseTarget(addrs(MaxAddresses)); err != nil || len(tg.A) != MaxAddresses {
		t.Errorf("%d addresses: %v", MaxAddresses, err)
	}
	if _, err := ParseTarget(addrs(MaxAddresses + 1)); err == nil || !strings.Contains(err.Error(), "65 addresses, want at most 64") {
		t.Errorf("%d addresses: error %v", MaxAddresses+1, err)
	}
	// 64 IPv6 addresses written out in full fit in a value.
	var v6 []string
	for i := range MaxAddresses {
		v6 = append(v6, fmt.Sprintf("2001:0db8:0000:0000:0000:0000:0000:%04x", i+1))
	}
	if _, err := ParseTarget(strings.Join(v6, ", ")); err != nil {
		t.Errorf("64 IPv6 addresses in full: %v", err)
	}
	for _, bad := range []string{"0.0.0.0", "::", "255.255.255.255", "224.0.0.1", "ff02::1", "10.0.0.1,0.0.0.0"} {
		if _, err := ParseTarget(bad); err == nil || !strings.Contains(err.Error(), "not an address a client can connect to") {
			t.Errorf("ParseTarget(%q) error = %v, want it refused", bad, err)
		}
	}
	if _, err := ParseTarget("169.254.20.10"); err != nil { // node-local DNS caches listen there
		t.Errorf("a link-local address: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"http://:8080/health?token=abc123": "http://:8080/health?REDACTED",
		"https://:8443/ready#frag":         "https://:8443/ready#REDACTED",
		"http://user:s3cret@:80/x?token=1": "http://REDACTED@:80/x?REDACTED",
		"user:s3cret@host":                 "REDACTED@host",
		"tcp://:5432":                      "tcp://:5432",
		"http://u:p@:x:80/%zz?k=v@w":       "http://REDACTED@:x:80/%zz?REDACTED",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	c, err := ParseCheck("http://:8080/health?token=abc123")
	if err != nil || c.Path != "/health?token=abc123" || c.String() != "http://:8080/health?REDACTED" {
		t.Errorf("ParseCheck = %+v (shown %s), %v; want the token probed but never shown", c, c, err)
	}
	// Refusals name no secret either.
	for _, s := range []string{"http://db:80/x?token=abc123", "ftp://:80/?token=abc123", "http://:0/?token=abc123", "tcp://:80/x?token=abc123", "http://:80/x#abc123"} {
		if _, err := ParseCheck(s); err == nil || strings.Contains(err.Error(), "abc123") {
			t.Errorf("ParseCheck(%q) error = %v, want a refusal without the token", s, err)
		}
	}
}

// A managed name never hides another's views: blue.NAME, green.NAME and
// _bluegreen.NAME are not names to manage.
func TestViewNamesRefused(t *testing.T) {
	for _, name := range []string{"blue.app.example.org", "green.example.org", "_bluegreen.app.example.org"} {
		if err := ValidateName(name); err == nil || !strings.Contains(err.Error(), "view of") {
			t.Errorf("ValidateName(%q) = %v, want it refused as a view", name, err)
		}
	}
	for _, name := range []string{"blueberry.example.org", "app.blue.example.org", "blue", "green-app.example.org"} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
	if _, _, err := ParseKey("/bluegreen/", "/bluegreen/blue.app.example.org/active"); err == nil {
		t.Error("a key of blue.app.example.org was taken")
	}
}
