package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// cpuProfile samples CoreDNS's CPU for d, through the pprof plugin, into a
// temporary file, which the caller removes.
func cpuProfile(pprofPort string, d time.Duration) (string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%s/debug/pprof/profile?seconds=%d", pprofPort, int(d.Seconds())))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	f, err := os.CreateTemp("", "bgbench-*.pprof")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// profileDuring profiles CoreDNS for d while load runs, starting a second
// into it so that the load has settled.
func profileDuring(pprofPort string, d time.Duration, load func() error) (string, error) {
	done := make(chan error, 1)
	go func() { done <- load() }()
	time.Sleep(time.Second)
	path, err := cpuProfile(pprofPort, d)
	if lerr := <-done; err == nil {
		err = lerr
	}
	return path, err
}

func pprofTop(path string) (string, error) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=25", path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("pprof: %v\n%s", err, out)
	}
	return string(out), nil
}

// shares are what parts of CoreDNS's CPU time went where, in one profile.
type shares struct{ serve, watcher, client, gc string }

func pprofShares(path string) (shares, error) {
	var s shares
	for _, part := range []struct {
		out   *string
		focus string
	}{
		{&s.serve, `bluegreen[.]\(\*BlueGreen\)[.]ServeDNS`},
		{&s.watcher, `bluegreen[.]\(\*watcher\)`},
		{&s.client, `go[.]etcd[.]io/etcd/client`},
		{&s.gc, `runtime[.]gcBgMarkWorker`},
	} {
		// Every node kept, so that "accounting for" is all the samples the
		// focus keeps, not the flat time of the top node.
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodefraction=0", "-edgefraction=0", "-nodecount=1000000",
			"-focus="+part.focus, path).CombinedOutput()
		if err != nil {
			return s, fmt.Errorf("pprof: %v\n%s", err, out)
		}
		*part.out = "0%"
		for _, line := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(line, "Showing nodes accounting for "); ok {
				// "2.50s, 18.40% of 13.59s total": keep the percentage
				if f := strings.Fields(rest); len(f) >= 2 {
					*part.out = f[1]
				}
			}
		}
	}
	return s, nil
}
