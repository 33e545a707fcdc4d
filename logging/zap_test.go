package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestNewLevels(t *testing.T) {
	t.Parallel()
	for _, level := range []string{"debug", "info", "warn", "error"} {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			l, err := New(level)
			require.NoError(t, err)
			want, err := zapcore.ParseLevel(level)
			require.NoError(t, err)
			assert.True(t, l.Core().Enabled(want), "level %s not enabled", level)
			assert.False(t, want > zapcore.DebugLevel && l.Core().Enabled(want-1), "level below %s enabled", level)
		})
	}
	for _, level := range []string{"", "INFO", "warning", "fatal", "panic", "dpanic", "trace"} {
		t.Run("bad "+level, func(t *testing.T) {
			t.Parallel()
			_, err := New(level)
			require.Error(t, err, "level %q accepted", level)
			assert.Contains(t, err.Error(), `"`+level+`"`)
			_, err = NewWithWriter(level, &bytes.Buffer{})
			require.Error(t, err, "level %q accepted", level)
		})
	}
}

func TestNewWithWriterJSON(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := NewWithWriter("info", &buf)
	require.NoError(t, err)
	l.Debug("hidden")
	l.Named("pool").Info("started", zap.String(KeyApp, "shop"), zap.Duration(KeyDuration, 1500*time.Millisecond))
	require.NoError(t, l.Sync())

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, 1, "output %q", buf.String())
	var entry map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &entry), "line %q", lines[0])
	assert.Equal(t, "info", entry["level"])
	assert.Equal(t, "started", entry["msg"])
	assert.Equal(t, "pool", entry["logger"])
	assert.Equal(t, "shop", entry["app"])
	assert.Contains(t, entry["caller"], "zap_test.go")
	ts, ok := entry["ts"].(string)
	require.True(t, ok, "ts %v is not an ISO 8601 string", entry["ts"])
	_, err = time.Parse("2006-01-02T15:04:05.000Z0700", ts)
	assert.NoError(t, err, "ts %q", ts)
}

// TestNewWithWriterDurations checks that durations carry their unit in the
// encoded JSON, as time.Duration.String writes them, rather than zap's
// default bare float seconds.
func TestNewWithWriterDurations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"seconds", 1500 * time.Millisecond, "1.5s"},
		{"milliseconds", 250 * time.Millisecond, "250ms"},
		{"microseconds", 1500 * time.Microsecond, "1.5ms"},
		{"minutes", 90 * time.Second, "1m30s"},
		{"zero", 0, "0s"},
		{"negative", -2 * time.Second, "-2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l, err := NewWithWriter("info", &buf)
			require.NoError(t, err)
			l.Info("timed", zap.Duration(KeyDuration, tt.d))
			require.NoError(t, l.Sync())

			var entry map[string]any
			require.NoError(t, json.Unmarshal(buf.Bytes(), &entry), "line %q", buf.String())
			assert.Equal(t, tt.want, entry[KeyDuration], "logged %v, line %q", tt.d, buf.String())
			assert.Contains(t, buf.String(), `"`+KeyDuration+`":"`+tt.want+`"`)
		})
	}
}

func TestServerErrorLog(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	std := ServerErrorLog(zap.New(core))
	std.Printf("http: panic serving 127.0.0.1:5000: boom")
	std.Printf("http: TLS handshake error from 127.0.0.1:5001: EOF")

	entries := logs.AllUntimed()
	require.Len(t, entries, 2)
	assert.Equal(t, zapcore.ErrorLevel, entries[0].Level)
	assert.Equal(t, "http: panic serving 127.0.0.1:5000: boom", entries[0].Message)
	assert.Equal(t, zapcore.DebugLevel, entries[1].Level)
	assert.Equal(t, "http: TLS handshake error from 127.0.0.1:5001: EOF", entries[1].Message)
}
