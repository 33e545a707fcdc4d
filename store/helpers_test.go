package store

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/internal/etcdtest"
)

// waitLimit bounds every wait of these tests for something that should
// happen within a few hundred milliseconds.
const waitLimit = 15 * time.Second

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string { return etcdtest.FreeAddr(t) }

// testEtcd is a real etcd the test may stop and start again.
type testEtcd struct{ *etcdtest.Member }

// startEtcd starts an etcd with its data under a new temporary directory.
func startEtcd(t testing.TB) *testEtcd { return &testEtcd{etcdtest.Start(t)} }

func (te *testEtcd) start()           { te.Restart() }
func (te *testEtcd) stop()            { te.Stop() }
func (te *testEtcd) endpoint() string { return te.Endpoint() }

// newClient is a client of the test itself, to write keys as an operator
// or a dyno manager would.
func newClient(t testing.TB, endpoint string) *clientv3.Client { return etcdtest.Client(t, endpoint) }

// prefix is the store prefix of the tests' space.
const prefix = "/spacerouter/test/"

// localConfig writes a config file with store under dir and loads it.
func localConfig(t testing.TB, dir, endpoint, extra string) *config.Config {
	t.Helper()
	src := fmt.Sprintf(`space: test
listen: {http: "127.0.0.1:0"}
store:
  etcd: {endpoints: [%q], prefix: %s, dial_timeout: 300ms}
  cache_file: last-good.json
  router_id: edge-1
%s`, endpoint, prefix, extra)
	path := filepath.Join(dir, "space.yaml")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	c, err := config.Load(path)
	require.NoError(t, err)
	return c
}

// snap is one config handed over by a store.
type snap struct {
	cfg *config.Config
	a   Applied
}

// running is a store whose Run runs in the background.
type running struct {
	t     *testing.T
	s     *Store
	reg   *prometheus.Registry
	snaps chan snap
	stop  func()
}

// runStore makes a store of local and runs it until the test ends (or
// stop is called).
func runStore(t *testing.T, local *config.Config, opts Options) *running {
	t.Helper()
	r := &running{t: t, reg: prometheus.NewRegistry(), snaps: make(chan snap, 1000)}
	opts.Registry = r.reg
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	if opts.HealthInterval == 0 {
		opts.HealthInterval = 100 * time.Millisecond
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = 500 * time.Millisecond
	}
	opts.OnSnapshot = func(c *config.Config, a Applied) { r.snaps <- snap{c, a} }
	s, err := New(local, opts)
	require.NoError(t, err)
	r.s = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(waitLimit):
				t.Errorf("Run did not return within %s of its context's end", waitLimit)
			}
			s.Close()
		})
	}
	t.Cleanup(r.stop)
	return r
}

// waitSnap waits for a handed-over config for which ok is true, and
// returns it; the configs before it are dropped.
func (r *running) waitSnap(what string, ok func(snap) bool) snap {
	r.t.Helper()
	deadline := time.After(waitLimit)
	var last *snap
	for {
		select {
		case s := <-r.snaps:
			if ok(s) {
				return s
			}
			last = &s
		case <-deadline:
			if last != nil {
				r.t.Fatalf("no config with %s within %s; the last had apps %v, refused %v, applied %+v", what, waitLimit, appNames(last.cfg), last.a.Refused, last.a)
			}
			r.t.Fatalf("no config with %s within %s, and none at all", what, waitLimit)
		}
	}
}

// noSnap fails if a config is handed over within d.
func (r *running) noSnap(d time.Duration) {
	r.t.Helper()
	select {
	case s := <-r.snaps:
		r.t.Fatalf("a config was handed over (apps %v, %+v): want none", appNames(s.cfg), s.a)
	case <-time.After(d):
	}
}

// gauge reads a gauge of the store's registry.
func (r *running) gauge(name string) float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	require.NoError(r.t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	r.t.Fatalf("no metric %s", name)
	return 0
}

// waitGauge waits until the gauge name has value v.
func (r *running) waitGauge(name string, v float64) {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for r.gauge(name) != v {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s is %v after %s: want %v", name, r.gauge(name), waitLimit, v)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// appNames lists the apps of c.
func appNames(c *config.Config) []string {
	var out []string
	for _, a := range c.Apps {
		out = append(out, a.Name)
	}
	return out
}

// hasApp returns a predicate: the config has app name with exactly the
// dynos named (in name order).
func hasApp(name string, dynos ...string) func(snap) bool {
	return func(s snap) bool {
		a := s.cfg.App(name)
		if a == nil || len(a.Dynos) != len(dynos) {
			return false
		}
		for i, d := range a.Dynos {
			if d.Name != dynos[i] {
				return false
			}
		}
		return true
	}
}

// put writes key (under the prefix) with value.
func put(t *testing.T, cli *clientv3.Client, key, value string, opts ...clientv3.OpOption) int64 {
	return etcdtest.Put(t, cli, prefix+key, value, opts...)
}

// del deletes key (under the prefix).
func del(t *testing.T, cli *clientv3.Client, key string) int64 {
	return etcdtest.Delete(t, cli, prefix+key)
}

// proxy is a loopback TCP proxy to etcd that the test can cut, as a
// network partition would, while etcd keeps running.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

// startProxy proxies a new loopback port to target until the test ends.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

// endpoint is the proxy's URL.
func (p *proxy) endpoint() string { return "http://" + p.ln.Addr().String() }

// setCut cuts (closing every proxied connection, and each new one at
// once) or restores the link.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *proxy) serve(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		up.Close()
		return
	}
	p.conns[up] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // a cut ends it with an error, as it should
		dst.Close()
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	<-done
}
