package config

import (
	"fmt"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// dynoName keeps dyno names to what a router line (dyno=web.1) can hold
// without quoting.
var dynoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// dynoStates are the states a dyno may be in.
var dynoStates = []string{StateUp, StateCrashed, StateStarting}

// dynos decodes the app's dynos. An app may have none (it answers H10).
// With each dyno it returns where the file has it, for checks made once
// the whole app is read (dyno_tls).
func (d *decoder) dynos(key string, n *yaml.Node) ([]Dyno, []dynoRef) {
	out, refs := []Dyno{}, []dynoRef{}
	names := make(map[string]string) // dyno name -> key of the dyno
	d.list(key, n, func(k string, item *yaml.Node) {
		if dy, addr, ok := d.dyno(k, item, names); ok {
			out = append(out, dy)
			refs = append(refs, dynoRef{key: k, addr: addr})
		}
	})
	return out, refs
}

// dyno decodes one dyno; names holds the names already used in the app.
// It returns the dyno and the node of its address (nil without one).
func (d *decoder) dyno(key string, n *yaml.Node, names map[string]string) (Dyno, *yaml.Node, bool) {
	dy := defaultDyno()
	seen, ok := d.fields(key, n, d.dynoFields(&dy, key, names))
	if !ok {
		return dy, nil, false
	}
	d.need(key, n, seen, "name", "every dyno needs a name such as web.1")
	d.need(key, n, seen, "address", "every dyno needs an address host:port such as 127.0.0.1:5000")
	return dy, seen["address"].v, true
}

// dynoFields is the table of the keys of the dyno at key; names holds the
// names already used in the app, and gets this dyno's.
func (d *decoder) dynoFields(dy *Dyno, key string, names map[string]string) []field {
	return []field{
		{"name", func(k string, v *yaml.Node) {
			dy.Name = d.str(k, v)
			if msg := dynoNameProblem(dy.Name, names); dy.Name != "" && msg != "" {
				d.problem(v, k, "%s", msg)
			}
			if _, dup := names[dy.Name]; !dup && dy.Name != "" {
				names[dy.Name] = key
			}
		}},
		{"address", func(k string, v *yaml.Node) {
			dy.Address = d.str(k, v)
			if msg := addrProblem(dy.Address, 1); dy.Address != "" && msg != "" {
				d.problem(v, k, "%s", msg)
			}
		}},
		{"state", func(k string, v *yaml.Node) {
			dy.State = d.str(k, v)
			d.oneOf(v, k, "state", dy.State, dynoStates)
		}},
	}
}

// dynoNameProblem checks a dyno name: the naming rule and unique in the app.
func dynoNameProblem(name string, names map[string]string) string {
	if !dynoName.MatchString(name) {
		return fmt.Sprintf("bad dyno name %q: want up to 100 characters of A-Z, a-z, 0-9, ., _ and -, such as web.1", name)
	}
	if first, dup := names[name]; dup {
		return fmt.Sprintf("dyno name %q is already the name of %s: want unique names in an app", name, first)
	}
	return ""
}

// need refuses a required key that is missing from the mapping n or empty.
func (d *decoder) need(key string, n *yaml.Node, seen map[string]pair, name, msg string) {
	p, ok := seen[name]
	switch {
	case !ok:
		d.problem(n, join(key, name), "missing: %s", msg)
	case isEmpty(p.v):
		d.problem(p.v, join(key, name), "missing value: %s", msg)
	}
}
