package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/bench"
)

// BenchmarkSharedSpacePropagation: the time from an etcd write (shop's
// dyno moved to the other of two dynos) to every one of three routers
// serving it, measured by asking each router every half millisecond.
// Each change comes 150 ms after the last was served everywhere, so that
// it is a lone change (a burst is coalesced: Options.Coalesce). Reports
// p50 and p99 over b.N changes; for the figure of BENCHMARKS.md:
//
//	go test ./cmd/spacerouter/ -run '^$' -bench SharedSpacePropagation -benchtime 1000x
func BenchmarkSharedSpacePropagation(b *testing.B) {
	m := startMember(b)
	cli := etcdClient(b, m.endpoint())
	dynos := []*testDyno{startTestDyno(b, "a"), startTestDyno(b, "b")}
	etcdPut(b, cli, "dynos/shop/web.1", dynos[0].value())
	etcdPut(b, cli, "apps/shop", "domains: [shop.example.com]")
	dir := b.TempDir()
	routers := []*sharedRouter{
		startSharedRouter(b, dir, m.endpoint(), "edge-1"),
		startSharedRouter(b, dir, m.endpoint(), "edge-2"),
		startSharedRouter(b, dir, m.endpoint(), "edge-3"),
	}
	eventually(b, "shop served", routers, serves("shop.example.com", 200, "a"))
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		next := dynos[(i+1)%2]
		start := time.Now()
		etcdPut(b, cli, "dynos/shop/web.1", next.value())
		var wg sync.WaitGroup
		var failed atomic.Bool
		for _, sr := range routers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := start.Add(sharedWait)
				for {
					if _, body := sr.get("shop.example.com"); body == next.name {
						return
					}
					if time.Now().After(deadline) {
						failed.Store(true)
						return
					}
					time.Sleep(500 * time.Microsecond)
				}
			}()
		}
		wg.Wait()
		if failed.Load() {
			b.Fatalf("change %d not served by every router within %s", i, sharedWait)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		time.Sleep(150 * time.Millisecond)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100])/1e6, "p99-ms")
	b.ReportMetric(float64(took[len(took)-1])/1e6, "max-ms")
}

// BenchmarkSharedSpaceProxyChurn: HTTP/1.1 keep-alive load (package
// bench's closed loop, 32 connections, its synthetic dyno) through one
// router of a shared space, in rounds of 1 s with no change and 1 s with
// 100 dyno changes a second (shop's dynos web.3 to web.12 put and
// deleted, pointing at a second synthetic dyno), interleaved so that a
// busy machine weighs on both alike. Reports both rates and the median
// of the rounds' ratios. etcd runs in this process, on the same cores.
// b.N is ignored (run it with -benchtime 1x):
//
//	go test ./cmd/spacerouter/ -run '^$' -bench SharedSpaceProxyChurn -benchtime 1x
func BenchmarkSharedSpaceProxyChurn(b *testing.B) {
	const rounds, phase = 8, time.Second
	m := startMember(b)
	cli := etcdClient(b, m.endpoint())
	stable, err := bench.StartDyno(bench.DynoConfig{BodySize: 100})
	require.NoError(b, err)
	b.Cleanup(func() { stable.Close() })
	moving, err := bench.StartDyno(bench.DynoConfig{BodySize: 100})
	require.NoError(b, err)
	b.Cleanup(func() { moving.Close() })
	etcdPut(b, cli, "dynos/shop/web.1", fmt.Sprintf("{address: %q}", stable.Addr()))
	etcdPut(b, cli, "apps/shop", "domains: [shop.example.com]")
	sr := startSharedRouter(b, b.TempDir(), m.endpoint(), "edge-1")
	eventually(b, "shop served", []*sharedRouter{sr}, serves("shop.example.com", 200, ""))
	d := &testDyno{name: "moving", addr: moving.Addr()}

	measure := func() float64 {
		res, err := bench.Run(context.Background(), bench.Config{URL: sr.http + "/", Headers: http.Header{"Host": {"shop.example.com"}},
			Conns: 32, Duration: phase}, nil)
		require.NoError(b, err)
		require.Zero(b, res.ErrorCount()+res.StatusErrors(), "failed requests: %v", res.FirstErrors)
		return res.RPS
	}
	b.ResetTimer()
	var none, with, ratios []float64
	changes := 0
	for range rounds {
		none = append(none, measure())
		stop := make(chan struct{})
		made := churn(b, cli, d, 10*time.Millisecond, stop)
		with = append(with, measure())
		close(stop)
		changes += made()
		ratios = append(ratios, with[len(with)-1]/none[len(none)-1])
	}
	b.StopTimer()
	slices.Sort(none)
	slices.Sort(with)
	slices.Sort(ratios)
	b.ReportMetric(none[rounds/2], "req/s-no-change")
	b.ReportMetric(with[rounds/2], "req/s-100-changes/s")
	b.ReportMetric(ratios[rounds/2], "ratio")
	b.ReportMetric(float64(changes)/(rounds*phase.Seconds()), "changes/s")
}
