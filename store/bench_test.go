package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
)

// BenchmarkStoreWriteToSnapshot measures the time from an etcd write (a
// dyno's address changing) to the store handing over the config that has
// it, one change at a time, on an embedded etcd over loopback: the
// store's share of "time from an etcd write to every router serving it".
// Changes are paced Coalesce apart, as isolated changes (a change within
// Coalesce of the last apply waits for the rest of it). It reports p50
// and p99 in milliseconds.
func BenchmarkStoreWriteToSnapshot(b *testing.B) {
	for _, settle := range []time.Duration{defaultSettle, time.Millisecond} {
		// Settle 1ms: what is left is etcd, the watch and the build.
		b.Run(fmt.Sprintf("settle=%s", settle), func(b *testing.B) {
			benchWriteToSnapshot(b, settle)
		})
	}
}

func benchWriteToSnapshot(b *testing.B, settle time.Duration) {
	te := startEtcd(b)
	cli := newClient(b, te.endpoint())
	ctx := context.Background()
	if _, err := cli.Put(ctx, prefix+"apps/shop", "domains: [shop.example.com]"); err != nil {
		b.Fatal(err)
	}
	local := localConfig(b, b.TempDir(), te.endpoint(), "")
	got := make(chan int64, 100)
	s, err := New(local, Options{Settle: settle, Registry: prometheus.NewRegistry(), Logger: zap.NewNop(),
		OnSnapshot: func(_ *config.Config, a Applied) { got <- a.Revision }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() { cancel(); <-done }()
	<-got
	var lat []time.Duration
	i := 0
	for b.Loop() {
		time.Sleep(defaultCoalesce) // pacing: an isolated change
		i++
		start := time.Now()
		resp, err := cli.Put(ctx, prefix+"dynos/shop/web.1", fmt.Sprintf("address: 127.0.0.1:%d", 1000+i%60000))
		if err != nil {
			b.Fatal(err)
		}
		for rev := int64(0); rev < resp.Header.Revision; {
			select {
			case rev = <-got:
			case <-time.After(waitLimit):
				b.Fatalf("revision %d not handed over within %s", resp.Header.Revision, waitLimit)
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}
