package h2

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/router/h1"
)

// h2specAnswer is the h2spec target's handler: it reads the request body
// (as the router does before it picks a dyno), answers refused heads as
// the router will, and anything else 200 with a small body.
func h2specAnswer(s *Stream) {
	defer s.Close()
	if answerRefused(s) {
		return
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		return
	}
	body := []byte("hello from spacerouter h2\n")
	s.Send(&Head{Status: 200, Fields: []h1.Field{{Name: []byte("content-type"), Value: []byte("text/plain")}}, ContentLength: int64(len(body))}, body, true)
}

// findH2spec returns the h2spec binary on PATH or in GOPATH/bin.
func findH2spec() string {
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "h2spec")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// TestH2Spec runs h2spec (v2.2.1: GOFLAGS= go install
// github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible) against a
// TLS listener serving Conns, and wants every case to pass.
func TestH2Spec(t *testing.T) {
	bin := findH2spec()
	if bin == "" {
		t.Skip("h2spec not installed")
	}
	if testing.Short() {
		t.Skip("slow: -short")
	}
	srv := startServer(t, &Config{IdleTimeout: 30 * time.Second}, handlerFunc(h2specAnswer), withTLS)
	_, port, _ := strings.Cut(srv.addr, ":")
	cmd := exec.Command(bin, "-t", "-k", "-h", "127.0.0.1", "-p", port, "-o", "5")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindStringSubmatch(text)
	require.NotNil(t, m, "no h2spec summary:\n%s", text)
	t.Logf("h2spec: %s", m[0])
	if m[4] != "0" || err != nil {
		i := strings.Index(text, "Failures:")
		if i < 0 {
			i = 0
		}
		t.Fatalf("h2spec failures (%v):\n%s", err, text[i:])
	}
	require.Equal(t, "145", m[1], "h2spec case count")
	require.Equal(t, m[1], m[2], "every case passes, none skipped")
}
