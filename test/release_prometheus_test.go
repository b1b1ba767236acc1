package test

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startPrometheus runs the Debian package's Prometheus server, scraping
// target every 200ms, and returns its URL once it has scraped it.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skipf("needs a Prometheus server (apt-get install prometheus; .ci/run does): %v", err)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(config, fmt.Appendf(nil, "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [%q]\n", target), 0o600)
	addr := "127.0.0.1:" + freePort(t)
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	u := "http://" + addr
	waitFor(t, "Prometheus scraping "+target, 60*time.Second, func() bool {
		resp, err := http.Get(u + "/api/v1/query?query=up%3D%3D1")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `"value"`)
	})
	return u
}

// The Prometheus and web analyses: an error ratio Prometheus scrapes from
// the app, and a queue depth read from a JSON document. The ratio rising
// at step 2 rolls the release back after failure_limit analyses.
func TestReleasePrometheusAnalysis(t *testing.T) {
	var ratio atomic.Uint64 // float64 bits
	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			fmt.Fprintf(w, "# TYPE app_error_ratio gauge\napp_error_ratio %g\n", math.Float64frombits(ratio.Load()))
		case "/stats.json":
			fmt.Fprintln(w, `{"queue": {"depth": 12}}`)
		}
	})}
	go srv.Serve(app)
	t.Cleanup(func() { srv.Close() })
	prom := startPrometheus(t, app.Addr().String())

	etcd, udp, _, _ := releaseSetup(t)
	hook := startHook(t, func(n notification) {
		if n.Event == "step" && n.Step == 2 {
			ratio.Store(math.Float64bits(0.5))
		}
	})
	plan := writePlan(t, fmt.Sprintf(`
names: [app.example.org]
to: green
steps: [50, 100]
bake: 1s
analysis:
  interval: 500ms
  failure_limit: 2
  prometheus:
    - name: error ratio
      url: %s
      query: max(app_error_ratio)
      max: 0.01
  web:
    - name: queue depth
      url: http://%s/stats.json
      json_path: queue.depth
      max: 100
notify:
  webhook: %s
`, prom, app.Addr(), hook.url))
	r := bgctl(t, etcd.endpoint, "release", "-f", plan)
	t.Logf("the release, as a person sees it:\n%s", r.stdout)
	out := r.stdout.String()
	if r.code != 1 || !strings.Contains(out, "analysis: failed: error ratio 0.5, over max 0.01") ||
		!strings.Contains(r.stderr.String(), "failed analyses in a row: 2, failure_limit 2") || !strings.Contains(out, "rolled back at step 2/2") {
		t.Errorf("want a rollback after two analyses saw the ratio over its max: %s", r)
	}
	if strings.Count(out, "analysis: ok: error ratio 0, queue depth 12") != 2 {
		t.Errorf("want two passing analyses in step 1, with both values: %s", out)
	}
	if got := strings.Join(hook.seen(), ","); got != "start,step 1/2 50,step 2/2 100,rollback" {
		t.Errorf("webhook events: %s", got)
	}
	waitFor(t, "every client back on blue", 10*time.Second, func() bool { return greens(t, udp, "app.example.org", greenAddr1, greenAddr2) == 0 })
}
