package acme

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spacerouter/spacerouter/internal/pebbletest"
)

// downOptions are the Options of a Manager whose directory is dir, which
// answers nothing useful; its listener address is never reached.
func downOptions(t *testing.T, dir string) Options {
	return Options{
		Directory:  dir,
		Email:      "ops@spacerouter.test",
		AgreeTOS:   true,
		Storage:    t.TempDir(),
		ListenAddr: pebbletest.FreeAddr(t),
	}
}

// TestDirectoryDown: an ACME directory that refuses connections or
// answers errors makes its domains failing with the error, logged, and
// retried with certmagic's backoff; GetCertificate says pending, and Stop
// ends the waiting retry at once.
func TestDirectoryDown(t *testing.T) {
	t.Parallel()
	errorsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"type":"urn:ietf:params:acme:error:serverInternal","detail":"the CA is having a bad day","status":500}`))
	}))
	t.Cleanup(errorsSrv.Close)
	rootsFile := filepath.Join(t.TempDir(), "roots.pem")
	require.NoError(t, os.WriteFile(rootsFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: errorsSrv.Certificate().Raw}), 0o600))

	for _, tc := range []struct {
		name, directory, roots, lastError string
	}{
		{name: "refuses connections", directory: "https://" + pebbletest.FreeAddr(t) + "/dir", lastError: "connection refused"},
		{name: "answers errors", directory: errorsSrv.URL + "/dir", roots: rootsFile, lastError: "the CA is having a bad day"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := downOptions(t, tc.directory)
			opts.TrustedRootsFile = tc.roots
			m, logs := startManager(t, opts, nil)
			down := uniq("down.test")
			require.NoError(t, m.SetDomains(map[string][]string{"shop": {down}}))
			st := waitStatus(t, m, 20*time.Second, "failing", allState(StateFailing, down))
			assert.Contains(t, st[down].LastError, tc.lastError)
			_, err := m.GetCertificate(hello(down))
			assert.ErrorIs(t, err, ErrPending)
			assert.Contains(t, err.Error(), tc.lastError)

			failed := logs.FilterMessage("ACME order failed; retrying with backoff").All()
			require.Len(t, failed, 1)
			assert.Equal(t, "shop", failed[0].ContextMap()["app"])
			retry := logs.FilterMessage("will retry").All()
			require.Len(t, retry, 1, "one try, the next one scheduled")
			assert.Equal(t, time.Minute, retry[0].ContextMap()["retrying_in"])
			assert.Equal(t, zapcore.ErrorLevel, retry[0].Level)

			stopped := make(chan struct{})
			go func() {
				m.Stop()
				close(stopped)
			}()
			select {
			case <-stopped:
			case <-time.After(5 * time.Second):
				t.Fatal("Stop did not end the retry within 5 s")
			}
			assert.ErrorIs(t, m.SetDomains(map[string][]string{"shop": {down}}), ErrStopped)
		})
	}
}

// TestQuiet: certmagic's info lines are written at debug; warnings and
// errors pass.
func TestQuiet(t *testing.T) {
	t.Parallel()
	for _, level := range []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel} {
		core, logs := observer.New(level)
		log := quiet(zap.New(core))
		log.Info("step")
		log.Warn("warning")
		log.With(zap.String("k", "v")).Info("child step")
		got := map[string]zapcore.Level{}
		for _, e := range logs.All() {
			got[e.Message] = e.Level
		}
		if level == zapcore.DebugLevel {
			assert.Equal(t, map[string]zapcore.Level{"step": zapcore.DebugLevel, "warning": zapcore.WarnLevel, "child step": zapcore.DebugLevel}, got)
		} else {
			assert.Equal(t, map[string]zapcore.Level{"warning": zapcore.WarnLevel}, got, "at info, certmagic's info lines are not written")
		}
	}
}
