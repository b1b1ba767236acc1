package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/bluegreen-dns/bluegreen"
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/bind"
	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func init() { dnsserver.Directives = bluegreen.InsertDirective(dnsserver.Directives) }

type scaleRow struct {
	names       int
	sync        time.Duration
	heap        uint64 // bytes the plugin holds after the sync
	heapPerName float64
}

// scale starts bluegreen in this process over 1k, 10k and n names and
// measures how long the first list takes and what heap stays in use after
// it. The n names are those already seeded under /bluegreen/ (n+1, with app).
func scale(client *clientv3.Client, endpoint string, n int) ([]scaleRow, error) {
	var rows []scaleRow
	var sizes []int
	for _, size := range []int{1000, 10000} {
		if size < n {
			sizes = append(sizes, size)
		}
	}
	for _, size := range append(sizes, n) {
		prefix, names := "/bluegreen/", n+1
		if size != n {
			prefix, names = fmt.Sprintf("/scale%d/", size), size
			blue, green := func(i int) string { return address(10, i) }, func(i int) string { return address(11, i) }
			if err := seedPrefix(client, prefix, size, blue, green, ""); err != nil {
				return nil, err
			}
		}
		// A process of its own for each, so that nothing else is on its heap.
		out, err := exec.Command(os.Args[0], "sync", endpoint, prefix, strconv.Itoa(names)).Output()
		if err != nil {
			return nil, fmt.Errorf("measuring %d names: %w", names, err)
		}
		var row scaleRow
		var syncNs int64
		if _, err := fmt.Sscan(string(out), &row.names, &syncNs, &row.heap); err != nil {
			return nil, fmt.Errorf("measuring %d names: %q: %w", names, out, err)
		}
		row.sync, row.heapPerName = time.Duration(syncNs), float64(row.heap)/float64(row.names)
		rows = append(rows, row)
	}
	return rows, nil
}

// seedPrefix writes n names under prefix, name i with the targets blue(i)
// and green(i), active blue, and the check if it is not "".
func seedPrefix(client *clientv3.Client, prefix string, n int, blue, green func(int) string, check string) error {
	var ops []clientv3.Op
	for i := range n {
		name := fmt.Sprintf("%sn%d.example.org/", prefix, i)
		ops = append(ops, clientv3.OpPut(name+"blue", blue(i)), clientv3.OpPut(name+"green", green(i)), clientv3.OpPut(name+"active", "blue"))
		if check != "" {
			ops = append(ops, clientv3.OpPut(name+"check", check))
		}
		if len(ops) >= 96 || i == n-1 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := client.Txn(ctx).Then(ops...).Commit()
			cancel()
			if err != nil {
				return err
			}
			ops = ops[:0]
		}
	}
	return nil
}

// measureSync is the child process's part: start bluegreen over prefix,
// and print the names, the nanoseconds startup took, and the heap after.
func measureSync(endpoint, prefix string, names int) error {
	corefile := fmt.Sprintf("example.org:0 {\n    bind 127.0.0.1\n    bluegreen {\n        endpoint %s\n        prefix %s\n    }\n}\n", endpoint, prefix)
	caddy.Quiet, dnsserver.Quiet = true, true
	before := heapInUse()
	start := time.Now()
	inst, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(corefile), ServerTypeName: "dns"})
	if err != nil {
		return err
	}
	sync := time.Since(start) // startup returns once the first list is in, or after 5s
	after := heapInUse()
	defer func() {
		inst.Stop()
		inst.ShutdownCallbacks()
	}()
	q := new(dns.Msg)
	q.SetQuestion("n0.example.org.", dns.TypeA)
	if r, _, err := new(dns.Client).Exchange(q, inst.Servers()[0].LocalAddr().String()); err != nil || r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("%d names not served when startup returned after %v: %v %v", names, sync, err, r)
	}
	fmt.Println(names, sync.Nanoseconds(), after-before)
	return nil
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
