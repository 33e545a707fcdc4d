package admin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest/observer"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// artifactsDir returns where the browser test keeps its screenshots:
// $SPACEROUTER_ARTIFACTS/admin, else a test temporary directory.
func artifactsDir(t *testing.T) string {
	dir := t.TempDir()
	if a := os.Getenv("SPACEROUTER_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "admin")
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// TestBrowserDashboard drives headless Chromium: it signs in through the
// provider's authorization endpoint, sees the apps, switches maintenance
// on for an app it owns (the backend records the switch) and sees a live
// router line appear.
// headless starts Debian's Chromium for the test and returns a context
// to drive it (60 s in all) and a function that keeps a screenshot.
func headless(t *testing.T) (context.Context, func(name string)) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if testing.Short() {
			t.Skip("no " + chromiumPath + " (skipped under -short)")
		}
		t.Fatalf("the browser test needs Chromium at %s: apt-get update && apt-get install -y chromium (or run with -short to skip it)", chromiumPath)
	}
	dir := artifactsDir(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	// The first Run starts the browser; its context must not time out.
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate("about:blank")), "starting %s", chromiumPath)
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	t.Cleanup(cancel)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err, "screenshot %s", name)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
	}
	return ctx, shot
}

func TestBrowserDashboard(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	ctx, shot := headless(t) // after the servers: its cleanup closes the browser first

	p.queueUser(newUser("olga", "shop-owners", "blog-owners"))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"), // → /auth/login → the provider → /auth/callback → /
		chromedp.WaitVisible(chromedp.CSS(`#apps tbody tr[data-app="shop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#apps tbody tr[data-app="blog"]`)),
	), "signing in and seeing the apps")
	shot("1-apps")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	assert.Equal(t, e.url+"/", loc, "back on the dashboard after sign-in")
	user, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#user")))
	require.NoError(t, err)
	assert.Equal(t, "olga@example.com (olga)", user)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#apps tbody tr").length`))
	require.NoError(t, err)
	assert.Equal(t, 2, rows, "only the apps olga has a role on")
	dynos, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#apps tbody tr[data-app="shop"] td:nth-child(3)`)))
	require.NoError(t, err)
	assert.Contains(t, dynos, "web.2 crashed")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button.toggle-maintenance[data-app="shop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#apps tbody tr[data-app="shop"] .maintenance.on`)),
	), "switching maintenance on")
	shot("2-maintenance")
	assert.Equal(t, []string{"shop=on by olga@example.com (olga)"}, e.backend.maintenanceLog())
	assert.Equal(t, 1, e.logs.FilterMessage("admin change").Len(), "one audit line")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#apps button.link[data-app="shop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#detail`)),
	), "opening shop")
	require.Eventually(t, func() bool { return e.backend.hub.Viewers("shop") == 1 }, 20*time.Second, 5*time.Millisecond,
		"the page opens a live stream of shop's lines")
	const line = `at=info method=GET path="/browser-live" host=shop.example.com status=200`
	e.backend.hub.Publish("shop", []byte(line))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#lines .line`))), "the live line appears")
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#lines")))
	require.NoError(t, err)
	assert.Contains(t, text, line)
	certs, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#certs")))
	require.NoError(t, err)
	assert.Contains(t, certs, "2027-03-01", "certificate expiry shown")
	tls, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#tls")))
	require.NoError(t, err)
	assert.Contains(t, tls, "shop.example.com")
	assert.NotContains(t, tls, "gone.example.com", "connections of no app are for admins")
	shot("3-live-line")
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(status), "no error on the page")
	assert.False(t, slices.ContainsFunc(e.logs.All(), func(l observer.LoggedEntry) bool { return l.Message == "admin API: backend failed" }))
}
