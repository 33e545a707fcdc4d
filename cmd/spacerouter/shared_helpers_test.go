package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/internal/etcdtest"
	"github.com/spacerouter/spacerouter/router"
)

// sharedPrefix is the store prefix of the shared-space tests.
const sharedPrefix = "/spacerouter/test/"

// sharedWait bounds every wait for something that takes a few hundred
// milliseconds.
const sharedWait = 15 * time.Second

// etcdMember is a real etcd the test may stop and start again.
type etcdMember struct{ *etcdtest.Member }

func startMember(t testing.TB) *etcdMember { return &etcdMember{etcdtest.Start(t)} }

func unusedAddrTB(t testing.TB) string { return etcdtest.FreeAddr(t) }

func (m *etcdMember) start()           { m.Restart() }
func (m *etcdMember) stop()            { m.Stop() }
func (m *etcdMember) endpoint() string { return m.Endpoint() }

// etcdClient is the test's own client, writing keys as an operator or a
// dyno manager would.
func etcdClient(t testing.TB, endpoint string) *clientv3.Client { return etcdtest.Client(t, endpoint) }

func etcdPut(t testing.TB, cli *clientv3.Client, key, value string, opts ...clientv3.OpOption) int64 {
	return etcdtest.Put(t, cli, sharedPrefix+key, value, opts...)
}

func etcdDel(t testing.TB, cli *clientv3.Client, key string) int64 {
	return etcdtest.Delete(t, cli, sharedPrefix+key)
}

// testDyno is a dyno answering its name, counting the connections it
// accepted.
type testDyno struct {
	name     string
	addr     string
	accepted atomic.Int64
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startTestDyno(t testing.TB, name string) *testDyno {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d := &testDyno{name: name, addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(countingListener{ln, &d.accepted})
	t.Cleanup(func() { srv.Close() })
	return d
}

// dynoValue is the value of dynos/<app>/<dyno> for d.
func (d *testDyno) value() string { return fmt.Sprintf("{address: %q}", d.addr) }

// sharedRouter is one router of the shared space, in this process.
type sharedRouter struct {
	t      testing.TB
	id     string
	sh     *shared
	http   string // http://host:port
	admin  string
	client *http.Client
	// tlsMu guards tlsClients (getTLS), by client certificate.
	tlsMu      sync.Mutex
	tlsClients map[string]*http.Client
}

// startSharedRouter starts a router whose config file (in dir, with
// cache_file cache.json) names endpoint, and applies the store's configs.
func startSharedRouter(t testing.TB, dir, endpoint, id string) *sharedRouter {
	t.Helper()
	return startSharedRouterListen(t, dir, endpoint, id, "")
}

// startSharedRouterListen is startSharedRouter with more listen keys
// (", https: ...").
func startSharedRouterListen(t testing.TB, dir, endpoint, id, listen string) *sharedRouter {
	t.Helper()
	path := filepath.Join(dir, id+".yaml")
	writeFileTB(t, path, fmt.Sprintf(`space: test
listen: {http: "127.0.0.1:0", admin: "127.0.0.1:0"`+listen+`}
store:
  etcd: {endpoints: [%q], prefix: %s, dial_timeout: 300ms}
  cache_file: %s.cache.json
  router_id: %s
`, endpoint, sharedPrefix, id, id))
	cfg, err := config.Load(path)
	require.NoError(t, err)
	sh, err := newShared(cfg, router.Options{Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(id),
		Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	require.NoError(t, sh.r.Start())
	sh.run()
	sr := &sharedRouter{t: t, id: id, sh: sh, http: "http://" + sh.r.HTTPAddr().String(), admin: "http://" + sh.r.AdminAddr().String(),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	t.Cleanup(sr.stop)
	return sr
}

var stopOnce sync.Map // *sharedRouter → stopped

func (sr *sharedRouter) stop() {
	if _, done := stopOnce.LoadOrStore(sr, true); done {
		return
	}
	sr.sh.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = sr.sh.r.Shutdown(ctx)
	sr.client.CloseIdleConnections()
}

// get asks the router for / of host and returns the status and body
// (status 0 and the error text when the request failed).
func (sr *sharedRouter) get(host string) (int, string) {
	req, err := http.NewRequest("GET", sr.http+"/", nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Host = host
	resp, err := sr.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// healthz returns the status of the router's /healthz.
func (sr *sharedRouter) healthz() int {
	resp, err := sr.client.Get(sr.admin + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// eventually waits until ok holds on every router, failing with what the
// last check said.
func eventually(t testing.TB, what string, routers []*sharedRouter, ok func(*sharedRouter) (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(sharedWait)
	for _, sr := range routers {
		for {
			good, got := ok(sr)
			if good {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("router %s: %s not seen within %s; last: %s", sr.id, what, sharedWait, got)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// serves returns a check: host answers status with body on the router.
func serves(host string, status int, body string) func(*sharedRouter) (bool, string) {
	return func(sr *sharedRouter) (bool, string) {
		st, b := sr.get(host)
		return st == status && (body == "" || b == body), fmt.Sprintf("%d %q", st, b)
	}
}

// load asks each router for host from workers goroutines each until stop
// is closed, and returns the requests made and the failures (a status
// other than 200, or an error), with the first few failures' text.
type loadResult struct {
	requests, failed int64
	firstFailures    []string
}

func runLoad(routers []*sharedRouter, host string, workers int, stop <-chan struct{}) func() loadResult {
	var res loadResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, sr := range routers {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					st, b := sr.get(host)
					mu.Lock()
					res.requests++
					if st != http.StatusOK {
						res.failed++
						if len(res.firstFailures) < 5 {
							res.firstFailures = append(res.firstFailures, fmt.Sprintf("%s: %d %s", sr.id, st, b))
						}
					}
					mu.Unlock()
				}
			}()
		}
	}
	return func() loadResult {
		wg.Wait()
		return res
	}
}

func writeFileTB(t testing.TB, path, data string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
}
