//go:build !unix

package bluegreen

import "time"

// processCPU is not read here: a process that never looks busy starts its
// probes in batches, which costs queries a little latency, not CPU.
func processCPU() time.Duration { return 0 }
