package logging

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns the operational logger: zap's production logger (JSON, ISO
// 8601 times, sampling, caller, stack traces at error) writing to stderr at
// level, one of "debug", "info", "warn" or "error". Durations are written
// as strings with their unit ("1.5s", "250ms").
func New(level string) (*zap.Logger, error) {
	return NewWithWriter(level, os.Stderr)
}

// NewWithWriter is New writing to w instead of stderr, for tests. Writes to
// w are serialized.
func NewWithWriter(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	// Durations with their unit ("1.5s", "250ms") as time.Duration.String
	// writes them, not zap's default of bare float seconds, so a reader of
	// the log needs no convention to tell 0.25 s from 250 ms.
	enc.EncodeDuration = zapcore.StringDurationEncoder
	ws := zapcore.Lock(zapcore.AddSync(w))
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), ws, lvl)
	// The same sampling as zap.NewProductionConfig: per message and level,
	// the first 100 each second, then every 100th.
	core = zapcore.NewSamplerWithOptions(core, time.Second, 100, 100)
	return zap.New(core,
		zap.ErrorOutput(ws),
		zap.AddCaller(),
		// Operational errors (a refused reload, a failed page fetch) are not
		// program faults: stack traces only from DPanic up.
		zap.AddStacktrace(zapcore.DPanicLevel),
	), nil
}

// parseLevel maps the log.level values of the config to zap levels.
func parseLevel(level string) (zapcore.Level, error) {
	switch level {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "warn":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", level)
}

// ServerErrorLog returns a *log.Logger for http.Server.ErrorLog (and the
// HTTP/2 server) that writes into l: handler panics at error level,
// everything else (TLS handshake errors, bad requests the server answers
// itself) at debug, since those are client noise.
func ServerErrorLog(l *zap.Logger) *log.Logger {
	return log.New(serverErrorWriter{l: l}, "", 0)
}

// serverErrorWriter turns the lines of a net/http error log into zap entries.
type serverErrorWriter struct{ l *zap.Logger }

// panicServing is in the message net/http and x/net/http2 log for a handler
// panic ("http: panic serving 1.2.3.4:5678: ...").
const panicServing = "panic serving"

// Write logs p, one line of the standard logger, as one zap entry.
func (w serverErrorWriter) Write(p []byte) (int, error) {
	lvl := zapcore.DebugLevel
	if bytes.Contains(p, []byte(panicServing)) {
		lvl = zapcore.ErrorLevel
	}
	if ce := w.l.Check(lvl, string(bytes.TrimRight(p, "\n"))); ce != nil {
		ce.Write()
	}
	return len(p), nil
}
