package bluegreen

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A thousand bad values make a few lines and a summary, not a thousand
// lines; each line repeats about 100 bytes of a value, whatever its size.
func TestBadValuesLogBounded(t *testing.T) {
	logs := captureLog(t)
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	s.problems.window = time.Hour
	var kvs []keyValue
	for i := range 1000 {
		kvs = append(kvs, keyValue{key: fmt.Sprintf("/bluegreen/n%d.example.org/ttl", i), value: strings.Repeat("9", 100<<10), rev: 5})
	}
	s.replace(kvs, 5)
	lines := awaitSummary(t, logs, s.problems)
	longest := 0
	for _, l := range lines {
		longest = max(longest, len(l))
	}
	if len(lines) > 25 || longest > 400 {
		t.Errorf("1,000 values of 100 KB: %d lines, the longest %d bytes; want at most 25 lines of at most 400", len(lines), longest)
	}
	t.Logf("1,000 values of 100 KB: %d log lines, the longest %d bytes", len(lines), longest)
}

// A thousand addresses found down make a few lines and a summary: a fleet
// of backends going down does not flood the log.
func TestProbeResultsLogBounded(t *testing.T) {
	logs := captureLog(t)
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	s.probeLog.window = time.Hour
	var kvs []keyValue
	for i := range 1000 {
		name := fmt.Sprintf("n%d.example.org", i)
		kvs = append(kvs, keyValues(5, name+"/active=blue", name+"/blue="+loopback(i), name+"/check=tcp://:1")...)
	}
	s.replace(kvs, 5)
	t.Cleanup(func() { s.replace(nil, 6) }) // and their metric series with them
	for i := range 1000 {
		report(s, fmt.Sprintf("n%d.example.org.", i), loopback(i), stateDown)
	}
	if lines := awaitSummary(t, logs, s.probeLog); len(lines) > 25 {
		t.Errorf("1,000 addresses down: %d log lines, want at most 25", len(lines))
	}
}

// awaitSummary ends b's window, as its timer does at the window's end, and
// waits for the line that sums up the 980 lines of b left out of a
// thousand; it returns the lines logged. The window, an hour, holds the
// thousand lines however slow the machine: the test does not wait for
// its end.
func awaitSummary(t *testing.T, logs *logBuffer, b *burst) []string {
	t.Helper()
	b.mu.Lock()
	if b.summary == nil {
		b.mu.Unlock()
		t.Fatalf("no summary of %s due: none left out\n%.2000s", b.what, logs)
	}
	b.summary.Reset(0)
	b.mu.Unlock()
	want := fmt.Sprintf("... and 980 more %s in the last %v", b.what, b.window)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 10s:\n%.2000s", want, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return strings.Split(strings.TrimSpace(logs.String()), "\n")
}

func loopback(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }
