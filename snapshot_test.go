package bluegreen

import (
	"fmt"
	"testing"

	"github.com/bluegreen-dns/bluegreen/schema"
)

func TestSnapshotWithLeavesOldAlone(t *testing.T) {
	changes := map[string]*entry{}
	for i := range 1000 {
		changes[fmt.Sprintf("n%d.example.org.", i)] = &entry{active: schema.Blue}
	}
	old := (&snapshot{}).with(1, changes)
	next := old.with(2, map[string]*entry{
		"n1.example.org.":    {active: schema.Green},
		"n2.example.org.":    nil,
		"new.example.org.":   {active: schema.Green},
		"absent.example.org": nil,
	})
	if old.served != 1000 || next.served != 1000 || old.rev != 1 || next.rev != 2 {
		t.Fatalf("served %d -> %d, revisions %d -> %d; want 1000 -> 1000, 1 -> 2", old.served, next.served, old.rev, next.rev)
	}
	if old.get("n1.example.org.").active != schema.Blue || old.get("n2.example.org.") == nil || old.get("new.example.org.") != nil {
		t.Error("the old snapshot changed")
	}
	if next.get("n1.example.org.").active != schema.Green || next.get("n2.example.org.") != nil || next.get("new.example.org.") == nil {
		t.Error("the new snapshot lacks the changes")
	}
	if next.get("n3.example.org.") != old.get("n3.example.org.") {
		t.Error("an unchanged name was copied")
	}
	// Names not served are held, and not counted.
	last := next.with(3, map[string]*entry{"n1.example.org.": {unserved: "no active key"}, "n4.example.org.": nil})
	if last.get("n1.example.org.") == nil || last.served != 998 || next.served != 1000 {
		t.Errorf("served %d (was %d); want 998 (1000), and n1 held", last.served, next.served)
	}
}

func TestSnapshotLookup(t *testing.T) {
	e := &entry{}
	s := (&snapshot{}).with(1, map[string]*entry{"app.example.org.": e, "blue.example.org.": e})
	for qname, want := range map[string]asked{
		"app.example.org.":            askName,
		"blue.app.example.org.":       askBlue,
		"green.app.example.org.":      askGreen,
		"_bluegreen.app.example.org.": askState,
		"blue.example.org.":           askName, // a managed name wins over a preview
	} {
		if got, v := s.lookup(qname); got != e || v != want {
			t.Errorf("lookup(%q) = %v, %d; want the entry, view %d", qname, got, v, want)
		}
	}
	for _, qname := range []string{"red.app.example.org.", "x.blue.app.example.org.", "example.org.", "."} {
		if got, _ := s.lookup(qname); got != nil {
			t.Errorf("lookup(%q) found an entry", qname)
		}
	}
}
