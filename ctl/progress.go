package ctl

import (
	"fmt"
	"io"
	"time"
)

// progress is how a long command shows what it does: a line per event,
// each with the time, and, when a person watches a terminal, a status line
// below them kept up to date.
type progress struct {
	w    io.Writer
	live bool
	line string // the status line shown, if any
}

// event prints one line, above the status line.
func (p *progress) event(format string, a ...any) {
	p.clear()
	fmt.Fprintf(p.w, "%s %s\n", clock(time.Now()), fmt.Sprintf(format, a...))
	if p.line != "" {
		fmt.Fprint(p.w, p.line)
	}
}

// status replaces the status line, on a terminal.
func (p *progress) status(format string, a ...any) {
	if !p.live {
		return
	}
	p.clear()
	p.line = fmt.Sprintf(format, a...)
	fmt.Fprint(p.w, p.line)
}

// done removes the status line.
func (p *progress) done() {
	p.clear()
	p.line = ""
}

func (p *progress) clear() {
	if p.live && p.line != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
