package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestAtomicRelease releases 50 names in one etcd transaction, 20 times
// under concurrent queries. Each release puts a new target into the idle
// colour and flips active to it, for every name at once; the targets encode
// the release, 10.RELEASE.NAME.1 and .2. No client may ever see a release
// and then, on a later query for any name, an older one; no answer may mix
// releases.
func TestAtomicRelease(t *testing.T) {
	const names, releases, clients = 50, 20, 4
	etcd := startEtcd(t)
	target := func(release, i int) string { return fmt.Sprintf("10.%d.%d.1,10.%d.%d.2", release, i, release, i) }
	for i := range names {
		etcd.putName(t, fmt.Sprintf("n%d.example.org", i), "blue", target(0, i), target(0, i))
	}
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, ""))

	var (
		stop       = make(chan struct{})
		wg         sync.WaitGroup
		sent       atomic.Int64
		violations atomic.Int64
		firstViol  atomic.Value
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := 0 // the newest release this client has seen
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				i := rand.IntN(names)
				m, err := exchange("udp", udp, fmt.Sprintf("n%d.example.org", i), dns.TypeA)
				sent.Add(1)
				release, problem := releaseOf(m, err, i)
				if problem == "" && release < seen {
					problem = fmt.Sprintf("n%d answered release %d after release %d was seen", i, release, seen)
				}
				if problem != "" {
					violations.Add(1)
					firstViol.CompareAndSwap(nil, problem)
					continue
				}
				seen = max(seen, release)
			}
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for r := 1; r <= releases; r++ {
		colour := []string{"blue", "green"}[r%2]
		var ops []clientv3.Op
		for i := range names {
			prefix := fmt.Sprintf("/bluegreen/n%d.example.org/", i)
			ops = append(ops, clientv3.OpPut(prefix+colour, target(r, i)), clientv3.OpPut(prefix+"active", colour))
		}
		if _, err := etcd.client.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
		// Let the clients see this release before the next one.
		waitFor(t, fmt.Sprintf("release %d", r), 10*time.Second, func() bool {
			m, err := exchange("udp", udp, "n0.example.org", dns.TypeA)
			got, _ := releaseOf(m, err, 0)
			return got == r
		})
	}
	waitFor(t, "the last release on every name", 10*time.Second, func() bool {
		for i := range names {
			m, err := exchange("udp", udp, fmt.Sprintf("n%d.example.org", i), dns.TypeA)
			if r, problem := releaseOf(m, err, i); problem != "" || r != releases {
				return false
			}
		}
		return true
	})
	close(stop)
	wg.Wait()
	t.Logf("%d queries during %d releases of %d names, %d saw a half-applied release or a mixed answer", sent.Load(), releases, names, violations.Load())
	if violations.Load() != 0 {
		t.Errorf("%d violations; first: %v", violations.Load(), firstViol.Load())
	}
}

// releaseOf reads the release an answer for name i comes from, or says what
// is wrong with it.
func releaseOf(m *dns.Msg, err error, i int) (int, string) {
	if err != nil {
		return 0, err.Error()
	}
	if len(m.Answer) != 2 {
		return 0, fmt.Sprintf("n%d: %d answers, want 2: %v", i, len(m.Answer), m)
	}
	release := -1
	for _, rr := range m.Answer {
		a, ok := rr.(*dns.A)
		if !ok {
			return 0, fmt.Sprintf("n%d: %v is not an A record", i, rr)
		}
		ip := a.A.To4()
		if ip == nil || int(ip[2]) != i || (release >= 0 && int(ip[1]) != release) {
			return 0, fmt.Sprintf("n%d: answer mixes releases or names: %v", i, m.Answer)
		}
		release = int(ip[1])
	}
	return release, ""
}
