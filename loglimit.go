package bluegreen

import (
	"fmt"
	"sync"
	"time"
)

// A burst limits one kind of log line that may come by the thousand: a put
// of a thousand bad values, ten thousand addresses going down together. The
// first lines of each window are logged; the rest are counted, and one line
// at the end of the window says how many.
type burst struct {
	what    string // what a line is about, for the summary: "invalid values"
	warning bool   // logged as warnings, else as info
	window  time.Duration

	mu      sync.Mutex
	start   time.Time // of the window
	logged  int
	dropped int
	summary *time.Timer
}

// burstLines is how many lines of a kind each window of burstWindow logs.
const (
	burstWindow = 10 * time.Second
	burstLines  = 20
)

// printf logs a line, or counts it when the window has had its lines.
func (b *burst) printf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if now.Sub(b.start) >= b.window && b.summary == nil {
		b.start, b.logged = now, 0
	}
	if b.logged < burstLines {
		b.logged++
		b.print(fmt.Sprintf(format, args...))
		return
	}
	b.dropped++
	if b.summary == nil {
		b.summary = time.AfterFunc(b.start.Add(b.window).Sub(now), b.summarise)
	}
}

// summarise logs how many lines the window left out, and starts a new one.
func (b *burst) summarise() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.print(fmt.Sprintf("... and %d more %s in the last %v", b.dropped, b.what, b.window))
	b.dropped, b.summary = 0, nil
	b.start, b.logged = time.Now(), 0
}

func (b *burst) print(line string) {
	if b.warning {
		log.Warning(line)
	} else {
		log.Info(line)
	}
}
