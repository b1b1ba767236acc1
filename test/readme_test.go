package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bluegreen-dns/bluegreen/ctl"
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

// TestReadmeBgctl runs every bgctl command of "Releasing with bgctl", in
// order and as written, against make run's name in a real etcd and a
// CoreDNS with make run's ttl (its address for 127.0.0.1:1053), and checks
// that each succeeds. retire is answered as a person at a terminal would.
func TestReadmeBgctl(t *testing.T) {
	section := readmeSection(t, "Releasing with bgctl")
	var lines []string
	inSh := false
	for _, line := range strings.Split(section, "\n") {
		switch {
		case line == "~~~ sh":
			inSh = true
		case line == "~~~":
			inSh = false
		case inSh && strings.HasPrefix(line, "bgctl "):
			line, _, _ = strings.Cut(line, " #")
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	if len(lines) < 12 {
		t.Fatalf("found %d bgctl commands in the README: %q", len(lines), lines)
	}

	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100,10.0.1.101", "10.0.2.100")
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "ttl 5"))
	for _, line := range lines {
		args := shellWords(t, strings.TrimPrefix(line, "bgctl "))
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "127.0.0.1:1053", udp)
		}
		io := ctl.IO{Terminal: true, Stdin: strings.NewReader(args[len(args)-1] + "\n")} // retire asks for the name
		r := bgctlWith(t, io, append([]string{"--endpoints", etcd.endpoint}, args...)...)
		if r.code != 0 {
			t.Errorf("README: %s\n%s", line, r)
		}
	}
}

// shellWords splits a command line as sh does, for the README's: words,
// and double-quoted strings.
func shellWords(t *testing.T, s string) []string {
	var out []string
	var word strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %q", s)
	}
	if inWord {
		out = append(out, word.String())
	}
	return out
}

// The README's plan and smoke-tests file are read and checked as bgctl
// release reads them: the only error left is that the name is not in this
// test's etcd, which bgctl checks after everything else in the plan.
func TestReadmeReleasePlan(t *testing.T) {
	section := readmeSection(t, "A gated release")
	dir := t.TempDir()
	files := 0
	for _, block := range strings.Split(section, "~~~ yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "~~~")
		name, _, _ := strings.Cut(strings.TrimPrefix(block, "# "), "\n")
		if err := os.WriteFile(filepath.Join(dir, name), []byte(block), 0o600); err != nil {
			t.Fatal(err)
		}
		files++
	}
	if files != 2 {
		t.Fatalf("found %d YAML files in the README's gated release, want smoke-tests.yml and release.yaml", files)
	}
	etcd := startEtcd(t)
	r := bgctl(t, etcd.endpoint, "release", "-f", filepath.Join(dir, "release.yaml"), "--dns", "127.0.0.1:1053", "--dry-run")
	if r.code != 1 || !strings.HasSuffix(strings.TrimSpace(r.stderr.String()), "release.yaml:2: names.0: app.example.org is not managed: etcd holds no key under /bluegreen/app.example.org/") {
		t.Errorf("the README's plan: %s", r)
	}
}

// readmeSection is the text of the README's section with that heading.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	return markdownSection(t, "../README.md", "## "+heading)
}

// markdownSection is the text of a Markdown file from the heading line
// given (with its #s) to the next heading of level 2.
func markdownSection(t *testing.T, path, heading string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", path, heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}
