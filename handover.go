package bluegreen

import (
	"strings"
	"sync"
)

// A reload starts the new instance of the plugin while the old one still
// answers. Just before, caddy tells the old one (OnRestart), which offers
// itself here; the new one of the same prefix and zones takes what it
// answers as the base its first list is applied to, as a restart takes the
// state file. Instances that are not being replaced offer nothing: several
// servers in one process (tests) never hand over to each other.
var replaced = struct {
	sync.Mutex
	byKey map[string]*BlueGreen
}{byKey: map[string]*BlueGreen{}}

func (bg *BlueGreen) instanceKey() string { return bg.prefix + " " + strings.Join(bg.Zones, " ") }

// offer makes bg's answers the base of the instance that replaces it.
func (bg *BlueGreen) offer() error {
	replaced.Lock()
	defer replaced.Unlock()
	replaced.byKey[bg.instanceKey()] = bg
	return nil
}

// withdraw takes bg's offer back: the reload failed, or bg stops.
func (bg *BlueGreen) withdraw() error {
	replaced.Lock()
	defer replaced.Unlock()
	if replaced.byKey[bg.instanceKey()] == bg {
		delete(replaced.byKey, bg.instanceKey())
	}
	return nil
}

// takeOver returns the instance of the same prefix and zones that bg
// replaces in a reload, if there is one.
func (bg *BlueGreen) takeOver() *BlueGreen {
	replaced.Lock()
	defer replaced.Unlock()
	prev := replaced.byKey[bg.instanceKey()]
	delete(replaced.byKey, bg.instanceKey())
	return prev
}
