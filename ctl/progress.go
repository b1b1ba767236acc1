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
	w     io.Writer
	live  bool
	width func() int // the terminal's columns; 0 when unknown
	shown bool       // whether a status line is on the screen
}

// event prints one line, in place of the status line: the next status
// call puts that back below it.
func (p *progress) event(format string, a ...any) {
	p.clear()
	fmt.Fprintf(p.w, "%s %s\n", clock(time.Now()), fmt.Sprintf(format, a...))
}

// status replaces the status line, on a terminal. It is cut to the
// terminal's width: a line that wrapped would leave its first rows behind
// when the next one is drawn.
func (p *progress) status(format string, a ...any) {
	if !p.live {
		return
	}
	p.clear()
	line := []rune(fmt.Sprintf(format, a...))
	if w := p.columns(); w > 1 && len(line) > w-1 {
		line = line[:w-1]
	}
	fmt.Fprint(p.w, string(line))
	p.shown = true
}

func (p *progress) columns() int {
	if p.width == nil {
		return 0
	}
	return p.width()
}

// done removes the status line.
func (p *progress) done() { p.clear() }

func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
