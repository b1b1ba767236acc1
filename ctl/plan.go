package ctl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"go.yaml.in/yaml/v3"
)

// A plan is a release as its YAML file describes it. Its field names are
// the ones the issue and the README document; extensions only add fields.
type plan struct {
	Names         []string      `yaml:"names"`
	To            string        `yaml:"to"`
	Reason        string        `yaml:"reason"`
	Smoke         []smokeTest   `yaml:"smoke"`
	SmokeFile     string        `yaml:"smoke_file"`
	Steps         []int         `yaml:"steps"`
	Preset        string        `yaml:"preset"`
	Bake          duration      `yaml:"bake"`
	Analysis      *analysisPlan `yaml:"analysis"`
	LowerTTL      int           `yaml:"lower_ttl"`
	ConfirmWithin duration      `yaml:"confirm_within"`
	Notify        notifyPlan    `yaml:"notify"`

	file     string     // as given to -f
	root     *yaml.Node // the document, for the line of each value
	to, from schema.Colour
	bake     time.Duration // the plan's, or its preset's
}

// A smokeTest is one entry of smoke:, in the format of the seed article's
// smoke-tests.yml.
type smokeTest struct {
	Name               string            `yaml:"name"`
	URL                string            `yaml:"url"`
	ExpectStatus       int               `yaml:"expect_status"`
	ExpectBodyContains string            `yaml:"expect_body_contains"`
	MaxResponseTimeMS  int               `yaml:"max_response_time_ms"`
	Method             string            `yaml:"method"`
	Body               string            `yaml:"body"`
	Headers            map[string]string `yaml:"headers"`
}

type analysisPlan struct {
	Interval     duration          `yaml:"interval"`
	FailureLimit int               `yaml:"failure_limit"`
	Smoke        bool              `yaml:"smoke"`
	Health       bool              `yaml:"health"`
	Prometheus   []prometheusCheck `yaml:"prometheus"`
	Web          []webCheck        `yaml:"web"`
}

// A prometheusCheck passes when every sample of its query's result is
// within its bounds.
type prometheusCheck struct {
	Name  string   `yaml:"name"`
	URL   string   `yaml:"url"`
	Query string   `yaml:"query"`
	Max   *float64 `yaml:"max"`
	Min   *float64 `yaml:"min"`
}

// A webCheck GETs a JSON document and passes when the number at JSONPath
// (dotted: queue.depth, items.0.size) is within its bounds.
type webCheck struct {
	Name     string   `yaml:"name"`
	URL      string   `yaml:"url"`
	JSONPath string   `yaml:"json_path"`
	Max      *float64 `yaml:"max"`
	Min      *float64 `yaml:"min"`
}

type notifyPlan struct {
	Webhook string `yaml:"webhook"`
}

// duration is a Go duration in YAML: 30s, 5m, 1h30m.
type duration struct {
	time.Duration
	set bool
}

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration, want one as 30s, 5m or 1h", n.Line, n.Value)
	}
	d.Duration, d.set = v, true
	return nil
}

// readPlan reads and checks a plan file: everything that needs no etcd.
func readPlan(file string, stdin io.Reader) (*plan, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the plan: %w", err)
	}
	p := &plan{file: file}
	if err := decodeStrict(file, b, p); err != nil {
		return nil, err
	}
	p.root = &yaml.Node{}
	if err := yaml.Unmarshal(b, p.root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if p.SmokeFile != "" {
		tests, err := readSmokeFile(p)
		if err != nil {
			return nil, err
		}
		p.Smoke = append(p.Smoke, tests...)
	}
	return p, p.check()
}

// decodeStrict decodes YAML into v, refusing fields v does not have, and
// says which line is wrong as file:line.
func decodeStrict(file string, b []byte, v any) error {
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	err := d.Decode(v)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty", file)
	}
	var te *yaml.TypeError
	switch {
	case errors.As(err, &te):
		msgs := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = file + ":" + strings.TrimPrefix(unknownField(e), "line ")
		}
		return errors.New(strings.Join(msgs, "\n"))
	case err != nil:
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return fmt.Errorf("%s:%s", file, strings.TrimPrefix(msg, "line "))
	}
	return nil
}

var unknownFieldRE = regexp.MustCompile(`^(line \d+): field (\S+) not found in type ctl\.(\w+)$`)

// planTypes are the types a plan decodes into, for the fields they take.
var planTypes = map[string]reflect.Type{
	"plan": reflect.TypeFor[plan](), "smokeTest": reflect.TypeFor[smokeTest](), "analysisPlan": reflect.TypeFor[analysisPlan](),
	"prometheusCheck": reflect.TypeFor[prometheusCheck](), "webCheck": reflect.TypeFor[webCheck](), "notifyPlan": reflect.TypeFor[notifyPlan](),
	"smokeFile": reflect.TypeFor[smokeFile](),
}

// unknownField rewrites yaml's "field x not found in type ctl.T" as what a
// plan's author can act on: the fields that are known there.
func unknownField(e string) string {
	m := unknownFieldRE.FindStringSubmatch(e)
	if m == nil {
		return e
	}
	var known []string
	if t, ok := planTypes[m[3]]; ok {
		for i := range t.NumField() {
			if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
				known = append(known, tag)
			}
		}
	}
	return fmt.Sprintf("%s: unknown field %q, want one of %s", m[1], m[2], strings.Join(known, ", "))
}

// smokeFile is a smoke-tests.yml file as the seed article writes one.
type smokeFile struct {
	Tests []smokeTest `yaml:"tests"`
}

// readSmokeFile reads smoke_file, relative to the plan's directory.
func readSmokeFile(p *plan) ([]smokeTest, error) {
	path := p.SmokeFile
	if !filepath.IsAbs(path) && p.file != "-" {
		path = filepath.Join(filepath.Dir(p.file), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, p.errorf("smoke_file", "%v", err)
	}
	var f smokeFile
	if err := decodeStrict(path, b, &f); err != nil {
		return nil, err
	}
	if len(f.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests: in it", path)
	}
	return f.Tests, nil
}

// errorf is an error about the value at path in the plan ("bake",
// "smoke.1.url"), naming the plan's file and the value's line.
func (p *plan) errorf(path, format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s: %s", p.file, p.line(path), path, fmt.Sprintf(format, a...))
}

// line is the line of the value at path, or of the nearest one above it
// that the file has (a default's is its parent's).
func (p *plan) line(path string) int {
	n := p.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range strings.Split(path, ".") {
		var next *yaml.Node
		switch i, err := strconv.Atoi(part); {
		case n.Kind == yaml.SequenceNode && err == nil && i < len(n.Content):
			next = n.Content[i]
		case n.Kind == yaml.MappingNode:
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == part {
					next = n.Content[j+1]
				}
			}
		}
		if next == nil {
			return line
		}
		n, line = next, next.Line
	}
	return line
}

// check refuses a plan that could not run as written.
func (p *plan) check() error {
	if len(p.Names) == 0 {
		return p.errorf("names", "missing: the names to release, as [app.example.org]")
	}
	for i, n := range p.Names {
		if err := schema.ValidateName(n); err != nil {
			return p.errorf(fmt.Sprintf("names.%d", i), "%v", err)
		}
		if slices.Index(p.Names, n) != i {
			return p.errorf(fmt.Sprintf("names.%d", i), "%s is listed twice", n)
		}
	}
	to, err := schema.ParseColour(p.To)
	if err != nil {
		return p.errorf("to", "%v", err)
	}
	p.to, p.from = to, to.Other()
	if err := p.checkSteps(); err != nil {
		return err
	}
	for i := range p.Smoke {
		if err := p.Smoke[i].check(p, fmt.Sprintf("smoke.%d", i)); err != nil {
			return err
		}
	}
	if p.Analysis != nil {
		if err := p.Analysis.check(p); err != nil {
			return err
		}
	}
	if p.LowerTTL != 0 {
		if _, err := schema.ParseTTL(itoa(p.LowerTTL), schema.DefaultMaxTTL); err != nil || p.LowerTTL < 1 {
			return p.errorf("lower_ttl", "%d is not a TTL to lower to, want 1 to %d seconds", p.LowerTTL, schema.DefaultMaxTTL)
		}
	}
	if p.ConfirmWithin.set && p.ConfirmWithin.Duration < time.Second {
		return p.errorf("confirm_within", "%v: want at least 1s, or leave it out to make the final flip permanent at once", p.ConfirmWithin.Duration)
	}
	if p.Notify.Webhook != "" {
		if err := checkHTTPURL(p.Notify.Webhook); err != nil {
			return p.errorf("notify.webhook", "%v", err)
		}
	}
	return nil
}

var (
	canaryPresetRE = regexp.MustCompile(`^Canary(\d+)Percent(\d+)Minutes?$`)
	linearPresetRE = regexp.MustCompile(`^Linear(\d+)PercentEvery(\d+)Minutes?$`)
)

// checkSteps works out the steps and the bake, from steps: and bake:, or
// from a preset named as AWS CodeDeploy names its configurations.
func (p *plan) checkSteps() error {
	p.bake = p.Bake.Duration
	if p.Preset != "" {
		if len(p.Steps) > 0 {
			return p.errorf("preset", "give steps or a preset, not both")
		}
		steps, bake, err := preset(p.Preset)
		if err != nil {
			return p.errorf("preset", "%v", err)
		}
		if bake > 0 && p.Bake.set {
			return p.errorf("bake", "preset %s sets the bake time (%v): leave bake out, or give steps instead", p.Preset, bake)
		}
		p.Steps = steps
		if bake > 0 {
			p.bake = bake
		}
		return nil
	}
	if len(p.Steps) == 0 {
		return p.errorf("steps", "missing: the canary shares, as [10, 30, 60, 100], or a preset")
	}
	for i, s := range p.Steps {
		at := fmt.Sprintf("steps.%d", i)
		switch {
		case s < 1 || s > 100:
			return p.errorf(at, "%d is not a share of clients, want 1 to 100", s)
		case i > 0 && s <= p.Steps[i-1]:
			return p.errorf(at, "%d after %d: each step must send more clients than the one before", s, p.Steps[i-1])
		}
	}
	if last := p.Steps[len(p.Steps)-1]; last != 100 {
		return p.errorf("steps", "the last step is %d: end with 100, when every client has the new colour", last)
	}
	if !p.Bake.set && len(p.Steps) > 1 {
		return p.errorf("bake", "missing: how long each step is watched before the next, as 5m")
	}
	return nil
}

// preset is the steps and bake of a CodeDeploy-style configuration:
// CanaryNPercentMMinutes (N, then 100, M minutes each),
// LinearNPercentEveryMMinutes (N, 2N, ... 100) or AllAtOnce (100, bake as
// the plan says, none by default).
func preset(name string) ([]int, time.Duration, error) {
	if name == "AllAtOnce" {
		return []int{100}, 0, nil
	}
	m := canaryPresetRE.FindStringSubmatch(name)
	linear := m == nil
	if linear {
		m = linearPresetRE.FindStringSubmatch(name)
	}
	if m == nil {
		return nil, 0, fmt.Errorf("%q does not exist, want CanaryNPercentMMinutes, LinearNPercentEveryMMinutes or AllAtOnce, as Canary10Percent5Minutes", name)
	}
	pct, _ := strconv.Atoi(m[1])
	minutes, _ := strconv.Atoi(m[2])
	if pct < 1 || pct > 99 || minutes < 1 {
		return nil, 0, fmt.Errorf("%q: want a share from 1 to 99 percent and at least 1 minute", name)
	}
	steps := []int{pct}
	for linear && steps[len(steps)-1]+pct < 100 {
		steps = append(steps, steps[len(steps)-1]+pct)
	}
	return append(steps, 100), time.Duration(minutes) * time.Minute, nil
}

// check refuses a smoke test that could not run, at path in the plan.
func (t *smokeTest) check(p *plan, path string) error {
	switch {
	case t.Name == "":
		return p.errorf(path, "a smoke test without a name")
	case !strings.Contains(t.URL, "{address}"):
		return p.errorf(path+".url", "%q has no {address}: a smoke test runs against each address of the colour released, as http://{address}:8080/health", t.URL)
	}
	if err := checkHTTPURL(t.expand("192.0.2.1", "app.example.org")); err != nil {
		return p.errorf(path+".url", "%v", err)
	}
	if t.ExpectStatus == 0 {
		t.ExpectStatus = 200
	}
	if t.Method == "" {
		t.Method = "GET"
	}
	switch {
	case t.ExpectStatus < 100 || t.ExpectStatus > 599:
		return p.errorf(path+".expect_status", "%d is not an HTTP status", t.ExpectStatus)
	case t.MaxResponseTimeMS < 0:
		return p.errorf(path+".max_response_time_ms", "%d: want a number of milliseconds", t.MaxResponseTimeMS)
	case !regexp.MustCompile(`^[A-Z]+$`).MatchString(t.Method):
		return p.errorf(path+".method", "%q is not an HTTP method, as GET or POST", t.Method)
	}
	return nil
}

// check refuses an analysis that could not run, or would check nothing.
func (a *analysisPlan) check(p *plan) error {
	switch {
	case !a.Interval.set || a.Interval.Duration < 100*time.Millisecond:
		return p.errorf("analysis.interval", "want how often to analyse, at least 100ms, as 30s")
	case p.bake > 0 && a.Interval.Duration > p.bake:
		return p.errorf("analysis.interval", "%v is longer than the bake time %v: no step would be analysed", a.Interval.Duration, p.bake)
	case a.FailureLimit < 0:
		return p.errorf("analysis.failure_limit", "%d: want how many failed analyses in a row roll back, at least 1", a.FailureLimit)
	case !a.Smoke && !a.Health && len(a.Prometheus) == 0 && len(a.Web) == 0:
		return p.errorf("analysis", "nothing to check: want smoke: true, health: true, prometheus: or web:")
	case a.Smoke && len(p.Smoke) == 0:
		return p.errorf("analysis.smoke", "the plan has no smoke tests to re-run")
	}
	if a.FailureLimit == 0 {
		a.FailureLimit = 1
	}
	for i, c := range a.Prometheus {
		at := fmt.Sprintf("analysis.prometheus.%d", i)
		if err := checkBounded(p, at, c.Name, c.URL, c.Max, c.Min); err != nil {
			return err
		}
		if c.Query == "" {
			return p.errorf(at, "no query:")
		}
	}
	for i, c := range a.Web {
		at := fmt.Sprintf("analysis.web.%d", i)
		if err := checkBounded(p, at, c.Name, c.URL, c.Max, c.Min); err != nil {
			return err
		}
		if c.JSONPath == "" {
			return p.errorf(at, "no json_path: the field to read, as queue.depth")
		}
	}
	return nil
}

// checkBounded checks what a prometheus and a web check have alike.
func checkBounded(p *plan, at, name, u string, maxV, minV *float64) error {
	switch {
	case name == "":
		return p.errorf(at, "a check without a name")
	case maxV == nil && minV == nil:
		return p.errorf(at, "neither max: nor min: to compare with")
	}
	if err := checkHTTPURL(u); err != nil {
		return p.errorf(at+".url", "%v", err)
	}
	return nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s is not an http:// or https:// URL", schema.Quote(schema.RedactURL(s)))
	}
	return nil
}
