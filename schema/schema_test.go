package schema

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in        string
		a, aaaa   int
		cname     string
		errSubstr string
	}{
		{in: "10.0.1.100", a: 1},
		{in: "10.0.1.100,10.0.1.101", a: 2},
		{in: "10.0.1.100, 2001:db8::1", a: 1, aaaa: 1},
		{in: "2001:db8::1,2001:db8::2", aaaa: 2},
		{in: "app-v2.example.net", cname: "app-v2.example.net."},
		{in: "_http._tcp.svc.cluster.local", cname: "_http._tcp.svc.cluster.local."},
		{in: "", errSubstr: "empty target"},
		{in: "10.0.1.300", errSubstr: "neither an IP address nor a hostname"},
		{in: "10.0.1.1,app.example.net", errSubstr: "must stand alone"},
		{in: "10.0.1.1,", errSubstr: "has an empty address: one comma too many"},
		{in: "App.Example.net", cname: "app.example.net."}, // as zone files write them
		{in: "app.example.net.", cname: "app.example.net."},
		{in: "app..example.net", errSubstr: "empty or over-long label"},
		{in: "app.example.net..", errSubstr: "empty or over-long label"},
		{in: "app.exämple.net", errSubstr: `'ä' is not a lowercase letter, digit, hyphen or underscore`},
		{in: "http://app.example.net", errSubstr: `':' is not a lowercase letter`},
		{in: "-bad-.example.net", errSubstr: `label "-bad-" starts or ends with a hyphen`},
		{in: "10.0.5.1,,10.0.5.2", errSubstr: "has an empty address: one comma too many"},
		{in: strings.Repeat("a", 64) + ".net", errSubstr: "empty or over-long label"},
	}
	for _, tc := range tests {
		got, err := ParseTarget(tc.in)
		if tc.errSubstr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errSubstr) {
				t.Errorf("ParseTarget(%q) error = %v, want one containing %q", tc.in, err, tc.errSubstr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tc.in, err)
			continue
		}
		if len(got.A) != tc.a || len(got.AAAA) != tc.aaaa || got.CNAME != tc.cname || got.Raw != tc.in {
			t.Errorf("ParseTarget(%q) = %d A, %d AAAA, cname %q, raw %q; want %d, %d, %q", tc.in, len(got.A), len(got.AAAA), got.CNAME, got.Raw, tc.a, tc.aaaa, tc.cname)
		}
	}
	if got, _ := ParseTarget(" 10.0.1.1,2001:db8::1\n"); got.Raw != "10.0.1.1,2001:db8::1" || len(got.Addresses()) != 2 {
		t.Errorf("surrounding space: raw %q, addresses %v", got.Raw, got.Addresses())
	}
}

func TestParseColourTTLCanary(t *testing.T) {
	if c, err := ParseColour("green\n"); err != nil || c != Green || c.Other() != Blue || c.String() != "green" {
		t.Errorf("ParseColour(green) = %v, %v", c, err)
	}
	for _, bad := range []string{"", "Green", "GREEN", "purple"} {
		if _, err := ParseColour(bad); err == nil {
			t.Errorf("ParseColour(%q) succeeded", bad)
		}
	}
	if ttl, err := ParseTTL("3600", DefaultMaxTTL); err != nil || ttl != 3600 {
		t.Errorf("ParseTTL(3600) = %d, %v", ttl, err)
	}
	for _, bad := range []string{"", "-1", "30s", "2147483648", "3601", "99999999"} {
		if _, err := ParseTTL(bad, DefaultMaxTTL); err == nil {
			t.Errorf("ParseTTL(%q) succeeded", bad)
		}
	}
	if _, err := ParseTTL("99999999", DefaultMaxTTL); err == nil || !strings.Contains(err.Error(), "above the maximum of 3600 seconds") {
		t.Errorf("ParseTTL(99999999) error = %v, want the maximum named", err)
	}
	if ttl, err := ParseTTL("86400", MaxTTL); err != nil || ttl != 86400 {
		t.Errorf("ParseTTL(86400) with a raised maximum = %d, %v", ttl, err)
	}
	if n, err := ParseCanary("100"); err != nil || n != 100 {
		t.Errorf("ParseCanary(100) = %d, %v", n, err)
	}
	for _, bad := range []string{"", "-1", "101", "10%", "256"} {
		if _, err := ParseCanary(bad); err == nil {
			t.Errorf("ParseCanary(%q) succeeded", bad)
		}
	}
}

func TestParseCheck(t *testing.T) {
	good := map[string]Check{
		"tcp://:5432":              {Raw: "tcp://:5432", Scheme: "tcp", Port: "5432"},
		"http://:8080/healthz":     {Raw: "http://:8080/healthz", Scheme: "http", Port: "8080", Path: "/healthz"},
		"https://:8443/ready?deep": {Raw: "https://:8443/ready?deep", Scheme: "https", Port: "8443", Path: "/ready?deep"},
		"http://:80":               {Raw: "http://:80", Scheme: "http", Port: "80", Path: "/"},
	}
	for s, want := range good {
		if got, err := ParseCheck(s); err != nil || got != want {
			t.Errorf("ParseCheck(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "tcp://10.0.0.1:80", "udp://:53", "tcp://:0", "tcp://:65536", "tcp://:80/x", "http://:http/", "http://", ":8080"} {
		if c, err := ParseCheck(s); err == nil {
			t.Errorf("ParseCheck(%q) = %+v, want an error", s, c)
		}
	}
	// A password is refused without being repeated.
	for _, s := range []string{"http://u:s3cret@:80/", "http://u:s3cret@:x:80/%zz"} {
		if _, err := ParseCheck(s); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseCheck(%q): error %v, want one without the password", s, err)
		}
	}
	if _, err := ParseCheck("http://:80/health?token=s3cret#frag"); err == nil || !strings.Contains(err.Error(), "no fragment") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a check with a fragment: error %v, want one that says so without the token", err)
	}
}

func TestParseKey(t *testing.T) {
	name, field, err := ParseKey("/bluegreen/", "/bluegreen/app.example.org/active")
	if err != nil || name != "app.example.org" || field != "active" || Key("/bluegreen/", name, field) != "/bluegreen/app.example.org/active" {
		t.Errorf("ParseKey = %q, %q, %v", name, field, err)
	}
	if _, field, err := ParseKey("/bluegreen/", "/bluegreen/app.example.org/actve"); err != nil || field != "actve" {
		t.Errorf("an unknown field: %q, %v; want it returned for the caller to report", field, err)
	}
	for key, want := range map[string]string{
		"/other/app.example.org/active":      "is not /bluegreen/NAME/FIELD",
		"/bluegreen/app.example.org":         "is not /bluegreen/NAME/FIELD",
		"/bluegreen/App.example.org/active":  "bad name",
		"/bluegreen/a/b.example.org/active":  "bad name",
		"/bluegreen/app.example.org./active": "bad name",
	} {
		if _, _, err := ParseKey("/bluegreen/", key); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKey(%q) error = %v, want one containing %q", key, err, want)
		}
	}
}

// Validate takes exactly what the field's parser takes.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		field, value string
		ok           bool
	}{
		{FieldActive, "green", true}, {FieldActive, "Green", false},
		{FieldBlue, "10.0.1.1", true}, {FieldGreen, "10.0.1.300", false},
		{FieldTTL, "30", true}, {FieldTTL, "30s", false}, {FieldTTL, "7200", false},
		{FieldCanary, "10", true}, {FieldCanary, "110", false},
		{FieldCheck, "tcp://:80", true}, {FieldCheck, "tcp://db:80", false},
		{FieldTrial, "green until=2026-11-24T12:13:00Z", true}, {FieldTrial, "green", false},
	} {
		if err := Validate(tc.field, tc.value, 1); (err == nil) != tc.ok {
			t.Errorf("Validate(%s, %q) = %v, want ok %v", tc.field, tc.value, err, tc.ok)
		}
	}
	if err := Validate("actve", "green", 0); !errors.Is(err, ErrUnknownField) {
		t.Errorf("Validate of an unknown field = %v, want ErrUnknownField", err)
	}
	if want := "unknown field, want active, blue, green, ttl, canary, check or trial"; ErrUnknownField.Error() != want {
		t.Errorf("ErrUnknownField = %q, want %q", ErrUnknownField, want)
	}
}

// IPs yields the addresses Addresses names, in the same order.
func TestTargetIPs(t *testing.T) {
	tg, err := ParseTarget("2001:db8::1, 10.0.0.1,10.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for ip := range tg.IPs() {
		got = append(got, ip.String())
	}
	if want := tg.Addresses(); !slices.Equal(got, want) || len(got) != 3 {
		t.Errorf("IPs %v, want %v", got, want)
	}
	for range tg.IPs() {
		break // stopping early must not panic
	}
}
