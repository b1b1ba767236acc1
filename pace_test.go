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
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
		}
	}()
	awaitWindow(t, pace, evenly, "spinning a core")
	stop.Store(true)
	<-done
	awaitWindow(t, pace, batched, "idle again")
}

func awaitWindow(t *testing.T, pace *pacer, want time.Duration, while string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); pace.window() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("%s, probes still start within %v of each other after 10s, want %v", while, pace.window(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
