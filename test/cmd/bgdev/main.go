// Command bgdev is bluegreen's development helper: it runs a throwaway etcd
// beside a CoreDNS binary, and reads, writes and queries them without etcdctl
// or dig installed.
//
//	bgdev run [-coredns bin/coredns] [-conf example/Corefile]
//	bgdev put KEY VALUE
//	bgdev del KEY
//	bgdev get [PREFIX]
//	bgdev dig NAME [TYPE]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bluegreen-dns/bluegreen/test/devetcd"
	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	etcdAddr = "127.0.0.1:2379"
	dnsAddr  = "127.0.0.1:1053"
)

// example is the name make run starts with.
var example = [][2]string{
	{"/bluegreen/app.example.org/blue", "10.0.1.100,10.0.1.101"},
	{"/bluegreen/app.example.org/green", "10.0.2.100"},
	{"/bluegreen/app.example.org/active", "blue"},
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; {
	case cmd == "run":
		err = run(args)
	case cmd == "put" && len(args) == 2:
		err = withClient(func(ctx context.Context, c *clientv3.Client) error {
			resp, err := c.Put(ctx, args[0], args[1])
			if err == nil {
				fmt.Printf("OK (revision %d)\n", resp.Header.Revision)
			}
			return err
		})
	case cmd == "del" && len(args) == 1:
		err = withClient(func(ctx context.Context, c *clientv3.Client) error {
			resp, err := c.Delete(ctx, args[0])
			if err == nil {
				fmt.Printf("%d deleted (revision %d)\n", resp.Deleted, resp.Header.Revision)
			}
			return err
		})
	case cmd == "get" && len(args) <= 1:
		prefix := "/bluegreen/"
		if len(args) == 1 {
			prefix = args[0]
		}
		err = withClient(func(ctx context.Context, c *clientv3.Client) error {
			resp, err := c.Get(ctx, prefix, clientv3.WithPrefix())
			if err != nil {
				return err
			}
			for _, kv := range resp.Kvs {
				fmt.Printf("%s %s\n", kv.Key, kv.Value)
			}
			return nil
		})
	case cmd == "dig" && (len(args) == 1 || len(args) == 2):
		err = dig(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bgdev:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  bgdev run [-coredns bin/coredns] [-conf example/Corefile]   etcd on `+etcdAddr+` and CoreDNS beside it
  bgdev put KEY VALUE                                          write a key to that etcd
  bgdev del KEY                                                delete a key
  bgdev get [PREFIX]                                           list keys (default /bluegreen/)
  bgdev dig NAME [TYPE]                                        query `+dnsAddr)
	os.Exit(2)
}

// run starts etcd with the example name, then CoreDNS, and stops both on
// Ctrl-C or when CoreDNS exits.
func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	binary := fs.String("coredns", "bin/coredns", "the CoreDNS binary")
	conf := fs.String("conf", "example/Corefile", "the Corefile")
	fs.Parse(args)

	dir, err := os.MkdirTemp("", "bgdev-etcd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	etcd, err := devetcd.Start(dir, etcdAddr)
	if err != nil {
		return err
	}
	defer etcd.Close()
	err = withClient(func(ctx context.Context, c *clientv3.Client) error {
		for _, kv := range example {
			if _, err := c.Put(ctx, kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing the example name: %w", err)
	}

	coredns := exec.Command(*binary, "-conf", *conf)
	coredns.Stdout, coredns.Stderr = os.Stdout, os.Stderr
	if err := coredns.Start(); err != nil {
		return fmt.Errorf("starting CoreDNS: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- coredns.Wait() }()
	fmt.Printf(`
etcd is on http://%[1]s with app.example.org in it; CoreDNS answers on %[2]s.

  Status:    bin/bgctl status --dns %[2]s
  Query:     bin/bgdev dig app.example.org
  Preview:   bin/bgdev dig green.app.example.org
  Flip:      bin/bgctl switch app.example.org --to green --dns %[2]s
  Roll back: bin/bgctl rollback app.example.org --dns %[2]s
  Trial:     bin/bgctl switch app.example.org --to green --confirm-within 2m --lower-ttl 1 --dns %[2]s
             then bin/bgctl confirm app.example.org, or let it go back to blue by itself
  History:   bin/bgctl history app.example.org
  Undo:      bin/bgctl undo app.example.org
  State:     bin/bgdev dig _bluegreen.app.example.org TXT

  With dig and etcdctl installed: dig @127.0.0.1 -p 1053 app.example.org
  and etcdctl --endpoints http://%[1]s get --prefix /bluegreen/

Ctrl-C stops both.

`, etcdAddr, dnsAddr)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	select {
	case <-stop:
		coredns.Process.Signal(syscall.SIGTERM)
		<-exited
		return nil
	case err := <-exited:
		return fmt.Errorf("CoreDNS exited: %v", err)
	}
}

func withClient(f func(context.Context, *clientv3.Client) error) error {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + etcdAddr}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f(ctx, c); err != nil {
		return fmt.Errorf("etcd at %s: %w", etcdAddr, err)
	}
	return nil
}

// dig prints the answer, or the rcode and authority, like dig's sections.
func dig(args []string) error {
	qtype := dns.TypeA
	if len(args) == 2 {
		t, ok := dns.StringToType[strings.ToUpper(args[1])]
		if !ok {
			return fmt.Errorf("unknown type %q", args[1])
		}
		qtype = t
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(args[0]), qtype)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, dnsAddr)
	if err != nil {
		return err
	}
	fmt.Printf(";; %s\n", dns.RcodeToString[r.Rcode])
	for _, rr := range r.Answer {
		fmt.Println(rr)
	}
	for _, rr := range r.Ns {
		fmt.Println(rr)
	}
	return nil
}
