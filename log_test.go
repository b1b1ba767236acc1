package bluegreen

import (
	"bytes"
	"sync"
	"testing"

	clog "github.com/coredns/coredns/plugin/pkg/log"
)

func init() { clog.Discard() }

// captureLog collects what the plugin logs during the test.
func captureLog(t *testing.T) *logBuffer {
	b := &logBuffer{}
	clog.SetOutput(b)
	t.Cleanup(clog.Discard)
	return b
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
