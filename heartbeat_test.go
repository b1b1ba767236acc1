package bluegreen

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A heartbeat whose reads fail logs why, and after replaceAfter asks for a
// new etcd client, saying why.
func TestHeartbeatFailureLogged(t *testing.T) {
	logs := captureLog(t)
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	s.replace([]keyValue{{key: "/bluegreen/app.example.org/blue", value: "10.0.1.100", rev: 5}}, 5)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close() // nothing answers there
	cfg := clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()}
	client, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	w := newWatcher(cfg, "/bluegreen/", s)
	w.heard.Store(time.Now().UnixNano())

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	replaced := make(chan error, 1)
	go w.heartbeat(ctx, client, func(why error) { replaced <- why })
	select {
	case why := <-replaced:
		if want := "no answer from etcd at [" + endpoint + "] through this client for"; !strings.Contains(why.Error(), want) {
			t.Errorf("client replaced because %v, want %q", why, want)
		}
	case <-ctx.Done():
		t.Fatalf("the client was not replaced within a minute of failed reads:\n%s", logs)
	}
	want := "heartbeat of /bluegreen/: reading etcd at [" + endpoint + "]: no answer within 1s"
	if n := strings.Count(logs.String(), want); n < 2 {
		t.Errorf("%d log lines %q, want one a failed read:\n%s", n, want, logs)
	}
	if !strings.Contains(logs.String(), "answers for /bluegreen/ are stale since") {
		t.Errorf("no log line saying the answers are stale:\n%s", logs)
	}
}

// Once the heartbeat's lines of a window are logged, its failures are
// counted instead: an outage of hours makes a few lines a minute.
func TestHeartbeatFailuresRateLimited(t *testing.T) {
	logs := captureLog(t)
	w := newWatcher(clientv3.Config{}, "/bluegreen/", nil)
	for range 100 {
		w.failures.printf("heartbeat of %s: reading etcd: %v", w.prefix, errors.New("no answer within 1s"))
	}
	if n := strings.Count(logs.String(), "heartbeat of /bluegreen/"); n != burstLines {
		t.Errorf("100 failed reads logged %d lines, want %d", n, burstLines)
	}
	if w.failures.window < time.Minute {
		t.Errorf("heartbeat failures limited per %v, want a minute or more", w.failures.window)
	}
}

// Auth failures are named as such, whatever way the etcd client returns
// them; other errors are not.
func TestAuthRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{rpctypes.ErrGRPCInvalidAuthToken, "etcd refused bluegreen's auth token: rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"},
		{rpctypes.ErrInvalidAuthToken, "etcd refused bluegreen's auth token: etcdserver: invalid auth token"},
		// A watch cancelled for a dead token: etcd's CancelReason, as text.
		{rpctypes.Error(errors.New(rpctypes.ErrGRPCInvalidAuthToken.Error())), "etcd refused bluegreen's auth token: rpc error: code = Unauthenticated"},
		{status.Error(codes.Unauthenticated, "some new reason"), "etcd refused bluegreen's auth token/credentials: rpc error: code = Unauthenticated desc = some new reason"},
		{rpctypes.ErrGRPCUserEmpty, "etcd refused bluegreen's auth token: rpc error: code = InvalidArgument desc = etcdserver: user name is empty"},
		{rpctypes.ErrGRPCAuthFailed, "etcd refused bluegreen's credentials: rpc error: code = InvalidArgument desc = etcdserver: authentication failed"},
		{rpctypes.ErrGRPCNoLeader, ""},
		{context.DeadlineExceeded, ""},
	} {
		got := authRefused(tc.err)
		if (got == nil) != (tc.want == "") || got != nil && !strings.Contains(got.Error(), tc.want) {
			t.Errorf("authRefused(%v) = %v, want %q", tc.err, got, tc.want)
		}
	}
}
