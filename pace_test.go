package bluegreen

import (
	"sync/atomic"
	"testing"
	"time"
)

// Probes start in batches while CoreDNS is idle, and evenly while it burns
// CPU (serving queries, here a spinning goroutine).
func TestPacerFollowsLoad(t *testing.T) {
	pace := newPacer()
	if got := pace.window(); got != batched {
		t.Fatalf("an idle process starts probes within %v of each other, want %v", got, batched)
	}
	// The spinner's CPU time is the process's. On a busy machine it may get
	// less than a quarter of a core in any one window of the pacer: the
	// test waits for the CPU time, not for a window, and then puts it in
	// the pacer's window that ends now.
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
		}
	}()
	const spin = 2 * paceEvery
	start := processCPU()
	for deadline := time.Now().Add(time.Minute); processCPU()-start < spin; {
		if time.Now().After(deadline) {
			t.Fatalf("spinning a core for a minute used %v of CPU, want %v", processCPU()-start, spin)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	<-done
	pace.at, pace.cpu = time.Now().Add(-paceEvery), processCPU()-spin
	if got := pace.window(); got != evenly {
		t.Errorf("spinning a core, probes start within %v of each other, want %v", got, evenly)
	}
	pace.at = time.Now().Add(-paceEvery)
	if got := pace.window(); got != batched {
		t.Errorf("idle again, probes start within %v of each other, want %v", got, batched)
	}
}
