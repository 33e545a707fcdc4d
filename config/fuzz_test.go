package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, and that what it returns is
// either a complete config or a non-empty list of problems in file order.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("a: &a {<<: *a}\n"))
	f.Add([]byte("apps: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz/space.yaml"
		c, err := Parse(name, data)
		if err != nil {
			checkProblems(t, name, err)
			return
		}
		checkConfig(t, c)
	})
}

// checkProblems checks the error of a refused config.
func checkProblems(t *testing.T, name string, err error) {
	errs, ok := errors.AsType[*Errors](err)
	if !ok || len(errs.Problems) == 0 {
		t.Fatalf("error %T %v: want *Errors with problems", err, err)
	}
	for i, p := range errs.Problems {
		if p.File != name || p.Msg == "" {
			t.Errorf("problem %q: want file %q and a message", p, name)
		}
		if i > 0 && p.Line < errs.Problems[i-1].Line {
			t.Errorf("problem %q after line %d: want file order", p, errs.Problems[i-1].Line)
		}
	}
}

// checkConfig checks the invariants of an accepted config.
func checkConfig(t *testing.T, c *Config) {
	if c.Listen.HTTP == "" && c.Listen.HTTPS == "" {
		t.Error("accepted a config without a listener")
	}
	if len(c.Apps) == 0 {
		t.Error("accepted a config without an app")
	}
	for _, d := range []int64{int64(c.Timeouts.Connect), int64(c.Timeouts.Shutdown), int64(c.Buffering.Window)} {
		if d <= 0 {
			t.Errorf("accepted a duration %d", d)
		}
	}
	l := c.Limits
	for _, n := range []int{l.RequestLineBytes, l.MethodBytes, l.HeaderNameBytes, l.HeaderBytes, l.CookieBytes,
		l.HeadersTotalBytes, l.HeaderCount, l.ConcurrencyPerDyno, l.Connections, l.ConnectionsPerClient,
		l.RequestsPerClient, l.H2MaxStreams, c.Buffering.Bytes} {
		if n <= 0 {
			t.Errorf("accepted a limit %d", n)
		}
	}
	if l.MinTransferRate < 0 || c.Buffering.RequestBytes < 0 || l.H2MaxStreams > 1<<31-1 {
		t.Errorf("accepted limits %+v, buffering %+v", l, c.Buffering)
	}
	for _, a := range c.Apps {
		if a.Name == "" || len(a.Domains) == 0 || len(a.FeatureSet) != len(a.Features) {
			t.Errorf("accepted app %+v", a)
		}
		for _, dy := range a.Dynos {
			if dy.Name == "" || dy.Address == "" || dy.State == "" {
				t.Errorf("accepted dyno %+v", dy)
			}
		}
	}
}
