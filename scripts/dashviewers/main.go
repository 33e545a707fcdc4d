//go:build dashviewers

// Command dashviewers (build tag dashviewers: it is no part of the
// module's build, as its provider is a test-only dependency) is the test-side helper of scripts/ab-viewers.sh: an
// OpenID Connect provider for a router's admin.auth, and dashboard viewers of
// its admin API, each in a process of its own so that neither counts in the
// router's CPU. Benchmarks only: the provider is mockoidc, which signs in
// anybody.
//
//	dashviewers idp -addr 127.0.0.1:18199 -dir DIR
//	    starts the provider; writes DIR/secret (the client secret) and
//	    DIR/env (ISSUER, CLIENT_ID and TOKEN, an ID token of group ops valid
//	    for an hour, as shell assignments); serves until SIGTERM.
//	dashviewers view -admin http://127.0.0.1:18198 -token TOKEN -app APP -n 10
//	    opens N dashboard viewers (bench.StartViewers: the page, its data
//	    every -poll, the app's live lines) and keeps them until SIGTERM;
//	    prints "ready" once every stream is open, and on exit what they read.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/spacerouter/spacerouter/bench"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "idp":
		err = idp(os.Args[2:])
	case "view":
		err = view(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashviewers:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dashviewers idp -addr ADDR -dir DIR | dashviewers view -admin URL -token TOKEN -app APP [-n 10] [-poll 10s]")
	os.Exit(2)
}

func idp(args []string) error {
	fs := flag.NewFlagSet("idp", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18199", "the provider's listen address (loopback)")
	dir := fs.String("dir", "", "where to write secret and env (required)")
	fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("idp: -dir is required: a directory for the secret and env files")
	}
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if err := m.Start(ln, nil); err != nil {
		return err
	}
	defer m.Shutdown()
	now := time.Now()
	tok, err := m.Keypair.SignJWT(jwt.MapClaims{
		"iss": m.Issuer(), "aud": []string{m.ClientID}, "sub": "bench", "email": "bench@example.com",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "groups": []string{"ops"},
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, "secret"), []byte(m.ClientSecret), 0o600); err != nil {
		return err
	}
	env := fmt.Sprintf("ISSUER=%q\nCLIENT_ID=%q\nTOKEN=%q\n", m.Issuer(), m.ClientID, tok)
	if err := os.WriteFile(filepath.Join(*dir, "env"), []byte(env), 0o600); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	return nil
}

func view(args []string) error {
	fs := flag.NewFlagSet("view", flag.ExitOnError)
	admin := fs.String("admin", "", "the admin listener's base URL (required)")
	token := fs.String("token", "", "a bearer ID token (required)")
	app := fs.String("app", "", "the app whose lines to stream (required)")
	n := fs.Int("n", 10, "how many viewers")
	poll := fs.Duration("poll", 10*time.Second, "how often each viewer reloads the page's data, as the dashboard does")
	fs.Parse(args)
	if *admin == "" || *token == "" || *app == "" {
		return fmt.Errorf("view: -admin, -token and -app are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	v, err := bench.StartViewers(ctx, bench.ViewersConfig{Admin: *admin, Token: *token, App: *app, N: *n, Poll: *poll})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	start := time.Now()
	<-ctx.Done()
	err = v.Err()
	v.Close()
	fmt.Printf("viewers=%d seconds=%.1f events=%d bytes=%d polls=%d\n", *n, time.Since(start).Seconds(), v.Events(), v.Bytes(), v.Polls())
	return err
}
