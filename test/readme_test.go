package test

import (
	"os"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	ctest "github.com/coredns/coredns/test"
)

// TestReadme starts every "~~~ corefile" example of the README as written
// (on a free port where it names none) and checks the plugin README sections.
func TestReadme(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, section := range []string{"Name", "Description", "Syntax", "Examples", "Metrics", "Ready", "See Also"} {
		if !strings.Contains(readme, "\n## "+section+"\n") {
			t.Errorf("README has no %q section", section)
		}
	}

	examples := corefileExamples(readme)
	if len(examples) == 0 {
		t.Fatal("README has no corefile examples")
	}
	dnsserver.Port = "0"
	defer func() { dnsserver.Port = dnsserver.DefaultPort }()
	for _, example := range examples {
		inst, err := caddy.Start(ctest.NewInput(example))
		if err != nil {
			t.Errorf("example does not start: %v\n%s", err, example)
			continue
		}
		stopCoreDNS(inst)
	}
}

// corefileExamples returns the bodies of the README's "~~~ corefile" blocks.
func corefileExamples(readme string) []string {
	var out []string
	var cur *strings.Builder
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case line == "~~~ corefile":
			cur = &strings.Builder{}
		case cur != nil && line == "~~~":
			out = append(out, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return out
}
