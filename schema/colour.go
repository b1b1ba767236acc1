package schema

import (
	"fmt"
	"strings"
)

// Colour is one of the two environments a name switches between.
type Colour uint8

const (
	Blue Colour = iota
	Green
)

// Colours are both colours, blue first.
var Colours = [2]Colour{Blue, Green}

// Other is the colour that is not c.
func (c Colour) Other() Colour { return 1 - c }

func (c Colour) String() string {
	if c == Green {
		return FieldGreen
	}
	return FieldBlue
}

// ParseColour reads the value of an active key. Only the lowercase words
// are colours: "GREEN" in etcd is a typo to report, not to guess.
func ParseColour(s string) (Colour, error) {
	switch s = strings.TrimSpace(s); s {
	case FieldBlue:
		return Blue, nil
	case FieldGreen:
		return Green, nil
	}
	return Blue, fmt.Errorf("%s is not a colour, want blue or green", Quote(s))
}
