package bluegreen

import "time"

// Probes due close together start on one wake of the scheduler, a probe
// starting at most that much early. How close depends on what else CoreDNS
// is doing. Waking an otherwise idle process costs more than the probe it
// starts: in make bench, 20,000 addresses took 11 % of a core with one wake
// a millisecond and 5 % with one every 50 ms. But while CoreDNS serves
// queries its threads are awake anyway, and a burst of probes delays the
// queries behind it: query p99 at 20,000 a second went from 1.4 to 2 times
// that of an unchecked server. So probes start in batches while CoreDNS is
// idle, and evenly while it is busy.
const (
	batched = 50 * time.Millisecond
	evenly  = time.Millisecond
)

// busyCPU is the share of a core above which CoreDNS counts as busy: more
// than probes alone take at the default interval.
const busyCPU = 0.25

// paceEvery is how often the pacer reads the process's CPU time.
const paceEvery = 100 * time.Millisecond

// A pacer tells the scheduler how close probes must be due to start
// together, from the process's CPU time over the last tenth of a second or
// so: a burst of queries finds probes starting evenly within that.
type pacer struct {
	at       time.Time
	cpu      time.Duration
	together time.Duration
}

func newPacer() *pacer {
	return &pacer{at: time.Now(), cpu: processCPU(), together: batched}
}

func (pc *pacer) window() time.Duration {
	if now := time.Now(); now.Sub(pc.at) >= paceEvery {
		cpu := processCPU()
		pc.together = batched
		if float64(cpu-pc.cpu) > busyCPU*float64(now.Sub(pc.at)) {
			pc.together = evenly
		}
		pc.at, pc.cpu = now, cpu
	}
	return pc.together
}
