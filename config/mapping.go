package config

import "go.yaml.in/yaml/v3"

// pair is one key and its value in a mapping.
type pair struct{ k, v *yaml.Node }

// mapping calls each for every key of the mapping n, after merge keys
// ("<<: *defaults") are expanded, refusing non-scalar keys and keys given
// twice. want describes the mapping for the message when n is not one. It
// returns the pairs by key name and whether n was a mapping.
func (d *decoder) mapping(key string, n *yaml.Node, want string, each func(name string, p pair)) (map[string]pair, bool) {
	v := deref(n)
	if v.Kind != yaml.MappingNode {
		d.problem(n, key, "want %s, got %s", want, describe(v))
		return nil, false
	}
	seen := make(map[string]pair)
	for _, p := range d.pairs(key, v, make(map[*yaml.Node]bool)) {
		k := deref(p.k)
		if k.Kind != yaml.ScalarNode {
			d.problem(p.k, key, "want a plain key, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(p.k, join(key, k.Value), "key given twice: first at line %d", first.k.Line)
			continue
		}
		seen[k.Value] = p
		each(k.Value, p)
	}
	return seen, true
}

// pairs returns the pairs of the mapping n, followed by the pairs of the
// mappings merged into it that n does not set itself. seen breaks merge
// cycles (&a {<<: *a}).
func (d *decoder) pairs(key string, n *yaml.Node, seen map[*yaml.Node]bool) []pair {
	if seen[n] {
		return nil
	}
	seen[n] = true
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(key, v, seen)...)
			continue
		}
		own = append(own, pair{k, v})
	}
	return append(own, notIn(merged, own)...)
}

// merge returns the pairs of the value of a merge key: a mapping or a list
// of mappings, earlier ones winning.
func (d *decoder) merge(key string, n *yaml.Node, seen map[*yaml.Node]bool) []pair {
	v := deref(n)
	var out []pair
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(key, v, seen)
	case yaml.SequenceNode:
		for _, item := range v.Content {
			if m := deref(item); m.Kind == yaml.MappingNode {
				out = append(out, d.pairs(key, m, seen)...)
				continue
			}
			d.problem(item, key, "bad merge key \"<<\": want a mapping, got %s", describe(item))
		}
		return notIn(out, nil)
	}
	d.problem(n, key, "bad merge key \"<<\": want a mapping or a list of mappings, got %s", describe(v))
	return nil
}

// notIn returns the pairs of merged whose key is neither in own nor in an
// earlier pair of merged.
func notIn(merged, own []pair) []pair {
	have := make(map[string]bool)
	for _, p := range own {
		have[deref(p.k).Value] = true
	}
	var out []pair
	for _, p := range merged {
		name := deref(p.k).Value
		if !have[name] {
			have[name] = true
			out = append(out, p)
		}
	}
	return out
}
