package router

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

const getShop = "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n"

func ptr[T any](v T) *T { return &v }

// expectAnswer sends a GET to shop.test and checks its status and the
// code of its router line (n-th line, 0-based).
func expectAnswer(t *testing.T, tr *testRouter, n, status int, code string) {
	t.Helper()
	resp, _ := tr.roundTrip(t, getShop, "GET")
	assert.Equal(t, status, resp.StatusCode)
	assert.Equal(t, code, field(tr.lines.wait(t, n), "code"), "line %d", n)
}

func TestMaintenanceSwitch(t *testing.T) {
	d := okDyno(t, "hello")
	yamlText := oneApp("", d.addr())
	tr := startRouter(t, yamlText)

	expectAnswer(t, tr, 0, 200, "")
	require.NoError(t, tr.SetMaintenance("shop", ptr(true), "alice"))
	assert.Equal(t, ptr(true), tr.MaintenanceOverride("shop"))
	expectAnswer(t, tr, 1, 503, "H80")

	// A reload does not undo the switch.
	cfg, err := config.Parse("test.yaml", []byte("listen: {http: \"127.0.0.1:0\"}\n"+yamlText))
	require.NoError(t, err)
	require.NoError(t, tr.Reload(cfg))
	expectAnswer(t, tr, 2, 503, "H80")

	// Off holds against a file that says on; nil gives the file back its say.
	cfg, err = config.Parse("test.yaml", []byte("listen: {http: \"127.0.0.1:0\"}\n"+oneApp("maintenance: true", d.addr())))
	require.NoError(t, err)
	require.NoError(t, tr.Reload(cfg))
	require.NoError(t, tr.SetMaintenance("shop", ptr(false), "alice"))
	expectAnswer(t, tr, 3, 200, "")
	require.NoError(t, tr.SetMaintenance("shop", nil, "alice"))
	assert.Nil(t, tr.MaintenanceOverride("shop"))
	expectAnswer(t, tr, 4, 503, "H80")

	err = tr.SetMaintenance("nope", ptr(true), "alice")
	assert.True(t, errors.Is(err, ErrUnknownApp), "%v", err)
}

func TestMaintenanceSwitchSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ca := newSpaceCAFiles(t, dir, "ca")
	d := okDyno(t, "hello")
	yamlText := "space: " + mtlsSpaceName + "\n" + ca.yaml() + oneApp("", d.addr())

	tr := startRouter(t, yamlText)
	expectAnswer(t, tr, 0, 200, "")
	require.NoError(t, tr.SetMaintenance("shop", ptr(true), "alice"))
	expectAnswer(t, tr, 1, 503, "H80")
	b, err := os.ReadFile(filepath.Join(ca.state, maintenanceFile))
	require.NoError(t, err)
	assert.JSONEq(t, `{"shop": true}`, string(b))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, tr.Shutdown(ctx))

	// A new process on the same state directory keeps the switch.
	tr2 := startRouter(t, yamlText)
	assert.Equal(t, ptr(true), tr2.MaintenanceOverride("shop"))
	expectAnswer(t, tr2, 0, 503, "H80")
	require.NoError(t, tr2.SetMaintenance("shop", nil, "alice"))
	expectAnswer(t, tr2, 1, 200, "")
	b, err = os.ReadFile(filepath.Join(ca.state, maintenanceFile))
	require.NoError(t, err)
	assert.JSONEq(t, `{}`, string(b))
}

func TestMaintenanceStateFileBroken(t *testing.T) {
	dir := t.TempDir()
	ca := newSpaceCAFiles(t, dir, "ca")
	require.NoError(t, os.MkdirAll(ca.state, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(ca.state, maintenanceFile), []byte("{not json"), 0o600))
	cfg, err := config.Parse("test.yaml", []byte("listen: {http: \"127.0.0.1:0\"}\nspace: "+mtlsSpaceName+"\n"+ca.yaml()+oneApp("", "127.0.0.1:1")))
	require.NoError(t, err)
	_, err = New(cfg, Options{Lines: logging.NewRouterLog(newLineSink(), "heroku[router]", nil)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), maintenanceFile)
	assert.Contains(t, err.Error(), "fix or remove the file")
}
