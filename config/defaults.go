package config

import "time"

// Defaults returns a Config holding every default of SPEC.md section 2:
// log, timeouts, limits and buffering. It has no listener and no app, so it
// is not a valid config by itself; Parse starts from it and overlays the
// file. Per-app defaults (features, dyno state) come from defaultApp and
// defaultDyno.
func Defaults() Config {
	return Config{
		Log: Log{
			Router: "stdout",
			Source: "heroku[router]",
			Level:  "info",
			Redact: []string{},
		},
		Timeouts: Timeouts{
			Connect:       5 * time.Second,
			Response:      30 * time.Second,
			Idle:          55 * time.Second,
			Client:        55 * time.Second,
			Keepalive:     60 * time.Second,
			DynoKeepalive: 90 * time.Second,
			Shutdown:      30 * time.Second,
		},
		Limits: Limits{
			RequestLineBytes:   8192,
			MethodBytes:        127,
			HeaderNameBytes:    1000,
			HeaderBytes:        524288,
			CookieBytes:        524288,
			HeadersTotalBytes:  1048576,
			HeaderCount:        1000,
			ConcurrencyPerDyno: 200,

			Connections:          10000,
			ConnectionsPerClient: 1000,
			RequestsPerClient:    100,
			MinTransferRate:      256,
			H2MaxStreams:         250,
		},
		Buffering: Buffering{
			Window:       10 * time.Millisecond,
			Bytes:        16384,
			RequestBytes: 65536,
		},
	}
}

// defaultApp returns an app before its keys are read: the global timeouts
// (the app's overrides are merged into them), for an app whose features
// key is omitted [spaces-tls-salesforce] as for a new Heroku app, and mtls
// off (forward xfcc), dyno_tls off. Lists and maps are empty, not nil.
func defaultApp(global Timeouts) App {
	return App{
		Timeouts:   global,
		Features:   []string{FeatureTLSSalesforce},
		FeatureSet: map[string]bool{FeatureTLSSalesforce: true},
		ConfigVars: map[string]string{},
		TLS:        []Cert{},
		Dynos:      []Dyno{},
		MTLS:       defaultMTLS(),
		IPRules:    []IPRule{},
		DynoTLS:    defaultDynoTLS(),
	}
}

// defaultDyno returns a dyno before its keys are read: state up.
func defaultDyno() Dyno {
	return Dyno{State: StateUp}
}
