package test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// site is one address of an app: an HTTP server on a loopback address
// that a release's smoke tests and analysis ask, failing when the test
// says.
type site struct {
	addr    string
	failing atomic.Bool
	hits    atomic.Int64
}

// startSites starts a site on port of each address.
func startSites(t *testing.T, port string, addrs ...string) map[string]*site {
	t.Helper()
	out := map[string]*site{}
	for _, a := range addrs {
		l, err := net.Listen("tcp", net.JoinHostPort(a, port))
		if err != nil {
			t.Fatal(err)
		}
		s := &site{addr: a}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.hits.Add(1)
			if s.failing.Load() || r.Host != "app.example.org" {
				http.Error(w, "failing", http.StatusInternalServerError)
				return
			}
			switch r.URL.Path {
			case "/health":
			case "/api/v1/status":
				fmt.Fprintln(w, `{"status": "ok"}`)
			default:
				http.NotFound(w, r)
			}
		})}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		out[a] = s
	}
	return out
}

// notification is what bgctl release POSTs to the plan's webhook.
type notification struct {
	Event   string   `json:"event"`
	Names   []string `json:"names"`
	Step    int      `json:"step"`
	Steps   int      `json:"steps"`
	Canary  int      `json:"canary"`
	Message string   `json:"message"`
}

// hook is a webhook receiver. on runs inside each request, before the
// answer: bgctl waits for it, so the test sees each step as it is.
type hook struct {
	url    string
	mu     sync.Mutex
	events []notification
	on     func(notification)
}

func startHook(t *testing.T, on func(notification)) *hook {
	t.Helper()
	h := &hook{on: on}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil || r.Method != http.MethodPost {
			t.Errorf("webhook: %s with %v", r.Method, err)
			return
		}
		if h.on != nil {
			h.on(n)
		}
		h.mu.Lock()
		h.events = append(h.events, n)
		h.mu.Unlock()
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	h.url = "http://" + l.Addr().String() + "/hook"
	return h
}

// seen is the events received, as "step 2/3 60".
func (h *hook) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, n := range h.events {
		if n.Event == "step" {
			out = append(out, fmt.Sprintf("step %d/%d %d", n.Step, n.Steps, n.Canary))
		} else {
			out = append(out, n.Event)
		}
	}
	return out
}

// writePlan writes a plan file for the test and returns its path.
func writePlan(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte(strings.TrimLeft(text, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// greens is how many of 100 client networks name answers with one of the
// green addresses.
func greens(t *testing.T, udp, name string, green ...string) int {
	t.Helper()
	n := 0
	for i := range 100 {
		for _, rr := range queryFrom(t, udp, name, netip.AddrFrom4([4]byte{198, 18, byte(i), 0})).Answer {
			if a, ok := rr.(*dns.A); ok && strings.Contains(" "+strings.Join(green, " ")+" ", " "+a.A.String()+" ") {
				n++
				break
			}
		}
	}
	return n
}

// bgctlProcess makes the test binary run as bgctl (see TestMain).
const bgctlProcess = "BLUEGREEN_TEST_BGCTL"

// proc is bgctl running as a process of its own.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	exited         chan struct{}
	code           int
}

// startBgctl starts bgctl as its own process against etcd at endpoint;
// it is killed at cleanup if it still runs.
func startBgctl(t *testing.T, endpoint string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(os.Args[0], args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), bgctlProcess+"=1", "BGCTL_ENDPOINTS="+endpoint)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(within):
		t.Fatalf("bgctl still runs after %v:\nstdout:\n%s\nstderr:\n%s", within, p.stdout, p.stderr)
		return 0
	}
}

func (p *proc) String() string {
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
}
