package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// An analysis is one look at how the colour released is doing: every check
// of the plan's analysis:, each passing or failing. Any failure fails it.
type analysis struct {
	passed   []string // what each passing check found, as "smoke 4/4"
	failures []string
}

func (a analysis) ok() bool { return len(a.failures) == 0 }

func (a analysis) String() string {
	if a.ok() {
		return "ok: " + strings.Join(a.passed, ", ")
	}
	return "failed: " + strings.Join(a.failures, "; ")
}

// analyse runs every check of the plan's analysis once, against the
// targets of the colour released and the --dns servers; the smoke tests
// only when smoke is set.
func (r *release) analyse(ctx context.Context, smoke bool) analysis {
	var a analysis
	ap := r.plan.Analysis
	if ap.Smoke && smoke {
		passed, failures := runSmoke(ctx, r.plan.Smoke, r.targets)
		a.failures = append(a.failures, failures...)
		if len(failures) == 0 {
			a.passed = append(a.passed, fmt.Sprintf("smoke %d/%d", passed, passed))
		}
	}
	if ap.Health {
		if failures := r.health(ctx); len(failures) > 0 {
			a.failures = append(a.failures, failures...)
		} else {
			a.passed = append(a.passed, "health ok")
		}
	}
	for _, c := range ap.Prometheus {
		a.add(c.Name, c.Max, c.Min)(prometheusValues(ctx, c))
	}
	for _, c := range ap.Web {
		a.add(c.Name, c.Max, c.Min)(webValue(ctx, c))
	}
	return a
}

// add returns what records a bounded check's values, or its error.
func (a *analysis) add(name string, maxV, minV *float64) func([]float64, error) {
	return func(vs []float64, err error) {
		if err != nil {
			a.failures = append(a.failures, name+": "+err.Error())
			return
		}
		for _, v := range vs {
			switch {
			case maxV != nil && v > *maxV:
				a.failures = append(a.failures, fmt.Sprintf("%s %s, over max %s", name, fmtFloat(v), fmtFloat(*maxV)))
				return
			case minV != nil && v < *minV:
				a.failures = append(a.failures, fmt.Sprintf("%s %s, under min %s", name, fmtFloat(v), fmtFloat(*minV)))
				return
			}
		}
		shown := make([]string, len(vs))
		for i, v := range vs {
			shown[i] = fmtFloat(v)
		}
		a.passed = append(a.passed, name+" "+strings.Join(shown, ","))
	}
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// health asks every --dns server for each name's state: the colour
// released must have every address up, and no failover.
func (r *release) health(ctx context.Context) []string {
	var failures []string
	for _, n := range r.plan.Names {
		addrs := map[string]bool{}
		for _, tg := range r.targets {
			if tg.name == n {
				addrs[tg.address] = true
			}
		}
		got, _ := until(ctx, r.servers, n, 2*time.Second, false, func(served) bool { return true })
		for _, s := range got {
			switch {
			case s.Error != "":
				failures = append(failures, fmt.Sprintf("health of %s at %s: %s", n, s.Server, s.Error))
			case s.Failover != "":
				failures = append(failures, fmt.Sprintf("health of %s at %s: failover, %s", n, s.Server, s.Failover))
			case s.CanaryPaused != "":
				failures = append(failures, fmt.Sprintf("health of %s at %s: canary paused, %s", n, s.Server, s.CanaryPaused))
			}
			for _, d := range s.Down {
				if addrs[d] {
					failures = append(failures, fmt.Sprintf("health of %s at %s: %s %s is down", n, s.Server, r.plan.to, d))
				}
			}
		}
	}
	return failures
}

// analysisTimeout bounds one request of a prometheus or web check.
const analysisTimeout = 10 * time.Second

// getJSON GETs u and decodes its JSON body into v.
func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, analysisTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %s", redactedURL(u), shortNetError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %s", redactedURL(u), shortNetError(err))
	}
	if err := json.Unmarshal(body, v); err != nil {
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", redactedURL(u), resp.StatusCode)
		}
		return fmt.Errorf("GET %s: not JSON: %v", redactedURL(u), err)
	}
	return nil
}

// prometheusValues runs an instant query on a Prometheus server's HTTP
// API: each sample of a vector, or the scalar. No data fails, as it says
// nothing of the release (a ratio of rates over no requests is empty).
func prometheusValues(ctx context.Context, c prometheusCheck) ([]float64, error) {
	var resp struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	u := strings.TrimSuffix(c.URL, "/") + "/api/v1/query?query=" + url.QueryEscape(c.Query)
	if err := getJSON(ctx, u, &resp); err != nil {
		return nil, err
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("prometheus refused the query: %s: %s", resp.ErrorType, resp.Error)
	}
	var samples [][2]any
	switch resp.Data.ResultType {
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(resp.Data.Result, &s); err != nil {
			return nil, fmt.Errorf("prometheus result: %v", err)
		}
		samples = append(samples, s)
	case "vector":
		var vec []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(resp.Data.Result, &vec); err != nil {
			return nil, fmt.Errorf("prometheus result: %v", err)
		}
		for _, s := range vec {
			samples = append(samples, s.Value)
		}
	default:
		return nil, fmt.Errorf("the query gives a %s, want an instant vector or a scalar", resp.Data.ResultType)
	}
	if len(samples) == 0 {
		return nil, errors.New("no data (if no series means 0, end the query with: or vector(0))")
	}
	var out []float64
	for _, s := range samples {
		str, _ := s[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus sample %v is not a number", s[1])
		}
		out = append(out, v)
	}
	return out, nil
}

// webValue GETs a JSON document and reads the number at the check's
// json_path.
func webValue(ctx context.Context, c webCheck) ([]float64, error) {
	var doc any
	if err := getJSON(ctx, c.URL, &doc); err != nil {
		return nil, err
	}
	v := doc
	for part := range strings.SplitSeq(c.JSONPath, ".") {
		switch t := v.(type) {
		case map[string]any:
			v = t[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(t) {
				return nil, fmt.Errorf("json_path %s: %q is not an index of a list of %d", c.JSONPath, part, len(t))
			}
			v = t[i]
		default:
			v = nil
		}
		if v == nil {
			return nil, fmt.Errorf("json_path %s: no %q in the document", c.JSONPath, part)
		}
	}
	switch t := v.(type) {
	case float64:
		return []float64{t}, nil
	case string:
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			return []float64{f}, nil
		}
	}
	return nil, fmt.Errorf("json_path %s is %v, not a number", c.JSONPath, v)
}

// redactedURL is u without a password or query-string secrets: only the
// path is shown past the host.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(a bad URL)"
	}
	p.User, p.RawQuery = nil, ""
	return p.String()
}
