//go:build devetcd

// Command devetcd runs what deploy/three-routers.sh needs besides the
// routers, for trying a shared space on one machine: a single-member etcd
// (go.etcd.io/etcd/server/v3/embed, no TLS, no auth: loopback only) and
// the demo space's two dynos. It prints the dynos' addresses, one a line,
// and runs until SIGINT or SIGTERM. Not for production: run a real etcd
// cluster there (README, "Running several routers").
//
// It sits behind the build tag devetcd, so that the spacerouter module's
// binaries do not carry an etcd server:
//
//	go build -tags devetcd -o devetcd ./deploy/devetcd
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/demo"
)

func main() {
	client := flag.String("client", "127.0.0.1:23790", "etcd's client `host:port` (loopback)")
	peer := flag.String("peer", "127.0.0.1:23800", "etcd's peer `host:port` (loopback)")
	dir := flag.String("dir", "devetcd.data", "etcd's data `directory`")
	flag.Parse()

	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = "dev", *dir
	cu, pu := url.URL{Scheme: "http", Host: *client}, url.URL{Scheme: "http", Host: *peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "devetcd: starting etcd on %s: %v\n", *client, err)
		os.Exit(1)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "devetcd: etcd not ready within 30s")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	addrs, stopDynos, err := demo.StartDynos(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "devetcd: starting the demo dynos: %v\n", err)
		os.Exit(1)
	}
	defer stopDynos()
	for _, a := range addrs {
		fmt.Println(a)
	}
	<-ctx.Done()
}
