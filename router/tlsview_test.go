package router

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// updateGolden rewrites the golden files of the TLS connection view.
var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

// checkGolden compares got with testdata/name, or writes it under
// -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update to write it", t.Name())
	assert.Equal(t, string(want), string(got), "%s (go test -run %s -update rewrites it)", path, t.Name())
}

// volatile are the values of the view that differ from run to run
// (addresses, random serials and keys, real validity periods); the golden
// files hold a placeholder for each, so they pin the JSON's shape: its
// field names, their order, and every other value.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"remote_addr": "127\.0\.0\.1:\d+"`), `"remote_addr": "127.0.0.1:PORT"`},
	{regexp.MustCompile(`"(serial|ca_sha256)": "[0-9a-f]+"`), `"$1": "HEX"`},
	{regexp.MustCompile(`"(not_after|opened_at)": "[^"]+"`), `"$1": "TIME"`},
	{regexp.MustCompile(`"cipher_suite": "TLS_[A-Z0-9_]+"`), `"cipher_suite": "SUITE"`},
}

func scrub(b []byte) []byte {
	for _, v := range volatile {
		b = v.re.ReplaceAll(b, []byte(v.with))
	}
	return append(b, '\n')
}

// TestTLSViewGolden: the connection view and summary of a space with
// connections in each mode, with and without a client certificate, as the
// admin API will serve them (GET /api/tls/connections and
// /api/tls/summary, issue 13): golden JSON with the run's volatile values
// scrubbed, and the values themselves checked against what the clients
// saw.
func TestTLSViewGolden(t *testing.T) {
	t0 := time.Now()
	clk := newFakeClock(t0)
	s := newMTLSSpace(t, "mtls: {mode: optional}")
	laptop := issue(t, s.ca.open(t, nil), "shop", "laptop")
	mr := startMTLSRouterClock(t, s.pki, s.yaml(), clk.Now)

	withCert := mr.shop(t, modeH1TLS, laptop.cert)
	require.Equal(t, 200, withCert.mustGet(t, "/a").status)
	require.Equal(t, 200, withCert.mustGet(t, "/b").status)
	h2 := mr.shop(t, modeH2)
	require.Equal(t, 200, h2.mustGet(t, "/c").status)
	blog := mr.mustDialM(t, modeH1TLS, dialOpts{sni: "blog.test"})
	waitConns(t, mr.Router, 3)
	clk.Set(t0.Add(90 * time.Second))
	unjudged := mr.shop(t, modeH2, laptop.cert) // no request yet: unchecked
	waitConns(t, mr.Router, 4)
	clk.Set(t0.Add(100 * time.Second))

	conns := mr.TLSConnections(TLSFilter{})
	require.Len(t, conns, 4)
	// Oldest first: the three of t0 by address, then the one of t0+90s.
	assert.Equal(t, unjudged.nc.LocalAddr().String(), conns[3].RemoteAddr)
	assert.EqualValues(t, 10, conns[3].AgeSeconds)
	for _, c := range conns {
		switch c.RemoteAddr {
		case withCert.nc.LocalAddr().String():
			assert.EqualValues(t, 2, c.Requests)
			assert.Equal(t, laptop.leaf.SerialNumber.Text(16), c.Client.Serial)
			assert.Equal(t, withCert.tlsS.PeerCertificates[0].SerialNumber.Text(16), c.Served.Serial)
			assert.Equal(t, caFingerprint(t, s.ca.cert), c.Client.CASHA256)
		case blog.nc.LocalAddr().String():
			assert.Equal(t, blog.tlsS.PeerCertificates[0].NotAfter.UTC(), c.Served.NotAfter)
			assert.Zero(t, c.Requests)
		}
		assert.True(t, c.OpenedAt.Equal(t0) || c.OpenedAt.Equal(t0.Add(90*time.Second)), "opened_at %v", c.OpenedAt)
	}
	// The golden file orders the connections of t0 by what they are, not
	// by their random ports.
	golden := []TLSConnection{}
	for _, addr := range []string{withCert.nc.LocalAddr().String(), h2.nc.LocalAddr().String(), blog.nc.LocalAddr().String(), unjudged.nc.LocalAddr().String()} {
		for _, c := range conns {
			if c.RemoteAddr == addr {
				golden = append(golden, c)
			}
		}
	}
	b, err := json.MarshalIndent(golden, "", "  ")
	require.NoError(t, err)
	checkGolden(t, "tls_connections.golden", scrub(b))

	sum := mr.TLSSummary()
	b, err = json.MarshalIndent(sum, "", "  ")
	require.NoError(t, err)
	checkGolden(t, "tls_summary.golden", scrub(b))

	f := mr.TLSConnections(TLSFilter{App: "shop", CA: "my-space space CA"})
	assert.Len(t, f, 1, "by the CA's common name: the judged connection only")
	assert.Empty(t, mr.TLSConnections(TLSFilter{Serial: "not hex"}))
}

// waitConns waits up to 5 s until the view has n connections: the router
// records a connection once its side of the handshake is done, which may
// be after the client's.
func waitConns(t testing.TB, r *Router, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.TLSConnections(TLSFilter{})) < n {
		require.True(t, time.Now().Before(deadline), "%d connections in the view within 5s", n)
		time.Sleep(time.Millisecond)
	}
}

// TestTLSViewAllocs: recording the view costs no allocation per request
// (one atomic add); the allocations are the connection's, once.
func TestTLSViewAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are not kept under -short or -race")
	}
	tc := &tlsConn{}
	assert.Zero(t, testing.AllocsPerRun(1000, tc.counted))
	var plain *tlsConn
	assert.Zero(t, testing.AllocsPerRun(1000, plain.counted))
}
