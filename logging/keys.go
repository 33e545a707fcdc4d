package logging

// Field keys of the operational log. Every package names zap fields with
// these constants, never with inline strings, so one key means one thing
// across the log.
const (
	// KeyApp is the app name.
	KeyApp = "app"
	// KeyDyno is the dyno name ("web.1").
	KeyDyno = "dyno"
	// KeyAddr is a network address (a listener's or a dyno's host:port).
	KeyAddr = "addr"
	// KeyRemoteAddr is the address of the client.
	KeyRemoteAddr = "remote_addr"
	// KeyError is the error; it is the key zap.Error uses, so prefer
	// zap.Error(err).
	KeyError = "error"
	// KeyFile is a file path (the config file, a certificate).
	KeyFile = "file"
	// KeyLine is a line number in KeyFile.
	KeyLine = "line"
	// KeyKey is a config key ("apps[0].features").
	KeyKey = "key"
	// KeyCode is an H code ("H12").
	KeyCode = "code"
	// KeyListener is a listener name ("http", "https", "admin").
	KeyListener = "listener"
	// KeySNI is the TLS server name sent by the client.
	KeySNI = "sni"
	// KeyReason is why something happened, as a short fixed token.
	KeyReason = "reason"
	// KeyDuration is how long something took or may take.
	KeyDuration = "duration"
	// KeyTarget is where output goes (the router log target).
	KeyTarget = "target"
	// KeyCount is a number of things (lines lost, connections closed).
	KeyCount = "count"
	// KeyURL is a URL the router fetches (an error or maintenance page).
	KeyURL = "url"
	// KeyFeature is an app feature name.
	KeyFeature = "feature"
	// KeyProfile is a TLS profile name.
	KeyProfile = "profile"
	// KeyTLSVersion is a TLS version ("tls1.3").
	KeyTLSVersion = "tls_version"
	// KeyCipherSuite is a TLS cipher suite name.
	KeyCipherSuite = "cipher_suite"
	// KeyVersion is the router's version.
	KeyVersion = "version"
	// KeySpace is the space name.
	KeySpace = "space"
	// KeyPanic is the value of a recovered panic.
	KeyPanic = "panic"
)
