package acme

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// quiet returns log with its info entries written at debug: certmagic
// logs each step of an order at info (lock acquired, rate limiter waited,
// account used, …), about fifteen lines per certificate, while the
// Manager logs the state changes an operator needs at info itself.
// Warnings and errors pass unchanged.
func quiet(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return quietCore{c} }))
}

// quietCore is a zapcore.Core that demotes info entries to debug.
type quietCore struct{ zapcore.Core }

// Check demotes an info entry to debug, then asks the wrapped core, which
// adds itself (not quietCore) to ce: the entry is written at debug
// through the wrapped core's sampling and encoder.
func (c quietCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if ent.Level == zapcore.InfoLevel {
		ent.Level = zapcore.DebugLevel
	}
	return c.Core.Check(ent, ce)
}

// With keeps the demotion on the child core.
func (c quietCore) With(fields []zapcore.Field) zapcore.Core {
	return quietCore{c.Core.With(fields)}
}
