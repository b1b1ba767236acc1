package bluegreen

import (
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
		{in: "10.0.1.1,", errSubstr: "not an IP address"},
		{in: "App.Example.net", cname: "app.example.net."}, // as zone files write them
		{in: "app.example.net.", cname: "app.example.net."},
		{in: "app..example.net", errSubstr: "empty or over-long label"},
		{in: "app.example.net..", errSubstr: "empty or over-long label"},
		{in: "app.exämple.net", errSubstr: "not a lowercase hostname"},
		{in: strings.Repeat("a", 64) + ".net", errSubstr: "empty or over-long label"},
	}
	for _, tc := range tests {
		got, err := parseTarget(tc.in)
		if tc.errSubstr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errSubstr) {
				t.Errorf("parseTarget(%q) error = %v, want one containing %q", tc.in, err, tc.errSubstr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseTarget(%q): %v", tc.in, err)
			continue
		}
		if len(got.a) != tc.a || len(got.aaaa) != tc.aaaa || got.cname != tc.cname || got.raw != tc.in {
			t.Errorf("parseTarget(%q) = %d A, %d AAAA, cname %q, raw %q; want %d, %d, %q", tc.in, len(got.a), len(got.aaaa), got.cname, got.raw, tc.a, tc.aaaa, tc.cname)
		}
	}
}

func TestParseColourAndTTL(t *testing.T) {
	if c, err := parseColour("green"); err != nil || c != green {
		t.Errorf("parseColour(green) = %v, %v", c, err)
	}
	for _, bad := range []string{"", "Green", "purple"} {
		if _, err := parseColour(bad); err == nil {
			t.Errorf("parseColour(%q) succeeded", bad)
		}
	}
	if ttl, err := parseTTL("300"); err != nil || ttl != 300 {
		t.Errorf("parseTTL(300) = %d, %v", ttl, err)
	}
	for _, bad := range []string{"", "-1", "30s", "2147483648"} {
		if _, err := parseTTL(bad); err == nil {
			t.Errorf("parseTTL(%q) succeeded", bad)
		}
	}
}

func TestSplitKey(t *testing.T) {
	name, field, err := splitKey("/bluegreen/", "/bluegreen/app.example.org/active")
	if err != nil || name != "app.example.org." || field != "active" {
		t.Errorf("splitKey = %q, %q, %v", name, field, err)
	}
	for key, want := range map[string]string{
		"/other/app.example.org/active":     "is not /bluegreen/NAME/FIELD",
		"/bluegreen/app.example.org":        "is not /bluegreen/NAME/FIELD",
		"/bluegreen/App.example.org/active": "bad name",
		"/bluegreen/a/b.example.org/active": "bad name",
	} {
		if _, _, err := splitKey("/bluegreen/", key); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("splitKey(%q) error = %v, want one containing %q", key, err, want)
		}
	}
}
