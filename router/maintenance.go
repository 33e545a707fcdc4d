package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/spaceca"
)

// Maintenance overrides set through the admin API (SPEC.md section 13):
// none (the file's apps[].maintenance holds), on, or off.
const (
	maintFile int32 = iota
	maintOn
	maintOff
)

// maintenanceFile is the file under space_ca.state_dir that keeps the
// overrides across reloads and restarts.
const maintenanceFile = "maintenance.json"

// overrides holds the maintenance switches of the admin API by app name.
// Each app's switch is an atomic in its appMetrics (which outlive
// reloads), read on every request; the set of switches is written to
// path, when there is one, so a restart keeps them.
type overrides struct {
	mu   sync.Mutex
	path string // "" keeps the switches in memory only
	set  map[string]bool
}

// loadOverrides reads the switches kept under stateDir ("" for none) and
// sets them on the apps' metrics. A missing file is no switch.
func loadOverrides(stateDir string, m *metrics) (*overrides, error) {
	o := &overrides{set: map[string]bool{}}
	if stateDir == "" {
		return o, nil
	}
	o.path = filepath.Join(stateDir, maintenanceFile)
	b, err := os.ReadFile(o.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return o, nil
	case err != nil:
		return nil, fmt.Errorf("maintenance switches: %w", err)
	}
	if err := json.Unmarshal(b, &o.set); err != nil {
		return nil, fmt.Errorf("maintenance switches: %s: %w (fix or remove the file; it holds the switches set through the admin API)", o.path, err)
	}
	for name, on := range o.set {
		m.forApp(name).maint.Store(maintValue(&on))
	}
	return o, nil
}

func maintValue(on *bool) int32 {
	switch {
	case on == nil:
		return maintFile
	case *on:
		return maintOn
	}
	return maintOff
}

// MaintenanceKeeper keeps the admin API's maintenance switches where
// every router of a shared space sees them (SPEC.md sections 13 and 14:
// maintenance/<app> in etcd). Every router's config then carries the
// switch in apps[].maintenance, so the router keeps no override of its
// own.
type MaintenanceKeeper interface {
	// KeepMaintenance records app's switch (nil: none, the app's own
	// maintenance holds) and returns once this router's config reflects
	// it, or with an error when it was not recorded.
	KeepMaintenance(app string, on *bool) error
}

// keepOverrides sets up where the switches are kept: opts.Maintenance,
// else cfg's state_dir, else memory.
func (r *Router) keepOverrides(cfg *config.Config, opts Options) error {
	r.waiting.Store(opts.Waiting)
	if opts.Maintenance != nil {
		r.keeper = opts.Maintenance
		r.maint = &overrides{set: map[string]bool{}}
		return nil
	}
	var err error
	r.maint, err = loadOverrides(stateDirOf(cfg), r.m)
	return err
}

// apply sets app's switch (nil removes it) and writes the set to the
// state file. The switch is set only when it was kept.
func (o *overrides) apply(m *metrics, app string, on *bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	next := make(map[string]bool, len(o.set)+1)
	for k, v := range o.set {
		next[k] = v
	}
	if on == nil {
		delete(next, app)
	} else {
		next[app] = *on
	}
	if o.path != "" {
		b, err := json.MarshalIndent(next, "", "  ")
		if err != nil {
			return err
		}
		if err := spaceca.ReplaceFile(o.path, append(b, '\n'), 0o600); err != nil {
			return fmt.Errorf("keeping the maintenance switch: %w", err)
		}
	}
	o.set = next
	m.forApp(app).maint.Store(maintValue(on))
	return nil
}

// get returns app's switch (nil: none).
func (o *overrides) get(app string) *bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if on, ok := o.set[app]; ok {
		return &on
	}
	return nil
}

// persistent reports whether the switches outlive a restart.
func (o *overrides) persistent() bool { return o.path != "" }

// inMaintenance reports whether app a answers H80: its switch when one
// is set, else the file.
func (a *app) inMaintenance() bool {
	switch a.m.maint.Load() {
	case maintOn:
		return true
	case maintOff:
		return false
	}
	return a.cfg.Maintenance
}

// stateDirOf returns the space CA's state_dir of cfg, "" without one.
func stateDirOf(cfg *config.Config) string {
	if cfg.SpaceCA == nil {
		return ""
	}
	return cfg.SpaceCA.StateDir
}

// ErrUnknownApp is the error for an app name the running config does not
// have.
var ErrUnknownApp = errors.New("no such app")

// SetMaintenance sets app's maintenance switch (SPEC.md section 13): on
// or off whatever the file says, or, with nil, back to the file's
// apps[].maintenance. It holds from the next request on, over reloads,
// and over restarts when the space has a state_dir. who names the
// person for the operational log.
func (r *Router) SetMaintenance(app string, on *bool, who string) error {
	if r.sp.Load().byName(app) == nil {
		return fmt.Errorf("%w: %q", ErrUnknownApp, app)
	}
	var err error
	kept := "in memory until restart: set space_ca.state_dir to keep it"
	switch {
	case r.keeper != nil:
		err, kept = r.keeper.KeepMaintenance(app, on), "in the store, for every router"
	default:
		err = r.maint.apply(r.m, app, on)
		if r.maint.persistent() {
			kept = "in state_dir"
		}
	}
	if err != nil {
		r.log.Error("maintenance switch not set", zap.String(logging.KeyApp, app), zap.Error(err))
		return err
	}
	state := "cleared (the app's own maintenance decides)"
	if on != nil {
		state = map[bool]string{true: "on", false: "off"}[*on]
	}
	// Debug: the admin API writes the change's one operational line
	// (SPEC.md section 13), naming the person, role, app and action.
	r.log.Debug("maintenance switch set", zap.String(logging.KeyApp, app), zap.String("maintenance", state),
		zap.String("by", who), zap.String("kept", kept))
	return nil
}

// MaintenanceOverride returns app's switch set through SetMaintenance,
// nil when there is none.
func (r *Router) MaintenanceOverride(app string) *bool { return r.maint.get(app) }
