package test

import (
	"os/exec"
	"testing"
	"time"
)

// TestPrometheusRules checks the alerting rules and runs their unit tests
// (series fixtures and the alerts they must and must not fire) with
// promtool, from Debian's prometheus package.
func TestPrometheusRules(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("needs promtool (apt-get install prometheus; .ci/run does)")
	}
	run(t, time.Minute, "promtool", "check", "rules", "../deploy/prometheus/bluegreen-rules.yml")
	run(t, time.Minute, "promtool", "test", "rules", "../deploy/prometheus/bluegreen-rules-test.yml")
}
