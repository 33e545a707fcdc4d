package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
)

// testVersion is linked into the test binary with -X main.version.
const testVersion = "1.2.3-test"

// binary is the spacerouter binary TestMain builds.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "spacerouter-cmd-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "making a directory for the binary: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Others may run the binary: tests that need a user without root's
	// rights run it as nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "opening the directory of the binary: %v\n", err)
		return 1
	}
	binary = filepath.Join(dir, "spacerouter")
	build := exec.Command("go", "build", "-o", binary, "-ldflags", "-X main.version="+testVersion, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building spacerouter: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// result is what one run of the binary printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

// runBinary runs the binary in dir with args and waits for it to exit.
func runBinary(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return runBinaryAs(t, nil, dir, args...)
}

// runBinaryAs is runBinary as the user cred names (nil: this process's).
func runBinaryAs(t *testing.T, cred *syscall.Credential, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res := result{}
	if err := cmd.Run(); err != nil {
		ee, ok := errors.AsType[*exec.ExitError](err)
		require.True(t, ok, "running spacerouter %q: %v\nstderr:\n%s", args, err, stderr.String())
		res.code = ee.ExitCode()
	}
	res.stdout, res.stderr = stdout.String(), stderr.String()
	return res
}

// writeFile writes data to dir/name.
func writeFile(t *testing.T, dir, name, data string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
}

func TestVersion(t *testing.T) {
	t.Parallel()
	res := runBinary(t, t.TempDir(), "-version")
	assert.Equal(t, 0, res.code, "exit code of -version; stderr:\n%s", res.stderr)
	assert.Equal(t, "spacerouter "+testVersion+"\n", res.stdout)
	assert.Empty(t, res.stderr)
}

const validConfig = `space: check
listen:
  http: 127.0.0.1:8080
apps:
  - name: shop
    domains: [shop.example.com]
    dynos:
      - {name: web.1, address: 127.0.0.1:5001}
`

// badConfig has an unknown feature (line 9) and a bad duration (line 5).
const badConfig = `space: check
listen:
  http: 127.0.0.1:8080
timeouts:
  connect: fivesecs
apps:
  - name: shop
    domains: [shop.example.com]
    features: [spaces-tls-modern, x]
    dynos:
      - {name: web.1, address: 127.0.0.1:5001}
`

func TestCheck(t *testing.T) {
	t.Parallel()

	t.Run("valid file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, dir, "space.yaml", validConfig)
		res := runBinary(t, dir, "-config", "space.yaml", "-check")
		assert.Equal(t, 0, res.code, "exit code of -check on a valid file; stderr:\n%s", res.stderr)
		assert.Equal(t, "space.yaml: ok\n", res.stdout)
		assert.Empty(t, res.stderr)
	})

	t.Run("problems", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, dir, "space.yaml", badConfig)
		res := runBinary(t, dir, "-config", "space.yaml", "-check")
		assert.Equal(t, 2, res.code, "exit code of -check on a bad file; stdout:\n%s", res.stdout)
		assert.Empty(t, res.stdout)

		got := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
		require.Len(t, got, 2, "one line per problem; stderr:\n%s", res.stderr)
		assert.Equal(t, `space.yaml:5: timeouts.connect: bad duration "fivesecs": want a Go duration such as 10ms or 5s`, got[0])
		assert.True(t, strings.HasPrefix(got[1], `space.yaml:9: apps[0].features: unknown feature "x": `),
			"problem line %q", got[1])

		// Exactly the lines of the config package, nothing added.
		_, err := config.Parse("space.yaml", []byte(badConfig))
		errs, ok := errors.AsType[*config.Errors](err)
		require.True(t, ok, "config.Parse of the bad file: %v", err)
		var want []string
		for _, p := range errs.Problems {
			want = append(want, p.String())
		}
		assert.Equal(t, want, got)
	})

	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		res := runBinary(t, t.TempDir(), "-config", "nope.yaml", "-check")
		assert.Equal(t, 2, res.code, "exit code of -check on a missing file")
		assert.Contains(t, res.stderr, "nope.yaml")
	})
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-nope"}, "flag provided but not defined: -nope"},
		{"flag without value", []string{"-config"}, "flag needs an argument: -config"},
		{"argument", []string{"space.yaml"}, `unexpected argument "space.yaml"`},
		{"check without config", []string{"-check"}, "-check needs -config FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runBinary(t, t.TempDir(), tc.args...)
			assert.Equal(t, 2, res.code, "exit code of spacerouter %q; stderr:\n%s", tc.args, res.stderr)
			assert.Contains(t, res.stderr, tc.want)
			assert.Contains(t, res.stderr, "Usage:")
			assert.Empty(t, res.stdout)
		})
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// startRawDyno starts a dyno on a raw listener that answers every request
// with 200 "hello from raw" and sends the header block of each request it
// reads on the returned channel.
func startRawDyno(t *testing.T) (addr string, requests <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	reqs := make(chan string, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serveRaw(c, reqs) })
		}
	})
	return ln.Addr().String(), reqs
}

// serveRaw answers the body-less requests on c until the peer closes it.
func serveRaw(c net.Conn, reqs chan<- string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	for {
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" || line == "\n" {
				break
			}
			head.WriteString(line)
		}
		select {
		case reqs <- head.String():
		default:
		}
		const body = "hello from raw"
		_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "+
			strconv.Itoa(len(body))+"\r\n\r\n"+body)
		if err != nil {
			return
		}
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	dynoAddr, requests := startRawDyno(t)
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "space.yaml", fmt.Sprintf(`space: cmd-test
listen:
  http: 127.0.0.1:%d
log:
  router: stdout
timeouts:
  shutdown: 5s
apps:
  - name: shop
    domains: [shop.example.com]
    dynos:
      - {name: web.1, address: %q}
`, port, dynoAddr))

	cmd := exec.Command(binary, "-config", "space.yaml")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	// Wait up to 2 s for the router to answer through to the dyno.
	url := fmt.Sprintf("http://127.0.0.1:%d/hello?x=1", port)
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.NewTimer(2 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var resp *http.Response
	for resp == nil {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		require.NoError(t, err)
		req.Host = "shop.example.com"
		if resp, err = client.Do(req); err == nil {
			break
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Skip("router not serving yet: no answer on 127.0.0.1:" + strconv.Itoa(port) + " within 2s: " + err.Error())
		case <-exited:
			t.Fatalf("spacerouter exited before serving: %v\nstderr:\n%s", waitErr, stderr.String())
		}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "GET %s via the router: %s", url, body)
	assert.Equal(t, "hello from raw", string(body))
	select {
	case head := <-requests:
		assert.Contains(t, head, "GET /hello?x=1 HTTP/1.1\r\n", "request at the dyno")
		assert.Contains(t, head, "Via: 1.1 spacerouter\r\n", "request at the dyno")
	default:
		t.Error("the dyno saw no request")
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("spacerouter still running 10s after SIGTERM") // stderr is still being written: not read here
	}
	require.NoError(t, waitErr, "exit after SIGTERM\nstderr:\n%s", stderr.String())
	assert.Contains(t, stdout.String(), ` at=info method=GET path="/hello?x=1" host=shop.example.com `, "router line")
	assert.Contains(t, stdout.String(), ` dyno=web.1 `, "router line")
	assert.Contains(t, stdout.String(), ` status=200 bytes=14 protocol=http1.1 tls=false`, "router line")
}
