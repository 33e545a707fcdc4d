package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ExportKeys turns a file-based space, the config file data named name,
// into the keys of a store (SPEC.md section 14): space with the file's
// timeouts, limits, buffering, acme and space_ca as written, apps/<app>
// for each app without its dynos, and dynos/<app>/<dyno> for each dyno.
// The file must pass Parse (the error is its *Errors otherwise) and have
// no store section. Values are YAML as the file has them, with aliases and
// merge keys expanded; relative paths stay relative, and a router resolves
// them against its own config file's directory. ModRevision is 0.
func ExportKeys(name string, data []byte) ([]KV, error) {
	c, err := Parse(name, data)
	if err != nil {
		return nil, err
	}
	if c.Store != nil {
		return nil, fmt.Errorf("%s has a store section: export a file-based space, whose apps are in the file", name)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil, fmt.Errorf("parsing %s again: %v", name, err)
	}
	d := &decoder{file: name}
	root := expand(d, doc.Content[0])
	var out []KV
	space := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch {
		case k.Value == "apps":
			kvs, err := exportApps(v)
			if err != nil {
				return nil, err
			}
			out = append(out, kvs...)
		case slices.Contains(spaceFields, k.Value) && !isNull(v):
			space.Content = append(space.Content, k, v)
		}
	}
	if len(space.Content) > 0 {
		kv, err := marshalKV(KeySpace, space)
		if err != nil {
			return nil, err
		}
		out = append([]KV{kv}, out...)
	}
	return out, nil
}

// exportApps returns the keys of the apps of the list n, which Parse
// found good.
func exportApps(n *yaml.Node) ([]KV, error) {
	var out []KV
	for _, app := range n.Content {
		var name string
		var dynos *yaml.Node
		value := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i := 0; i+1 < len(app.Content); i += 2 {
			k, v := app.Content[i], app.Content[i+1]
			switch k.Value {
			case "name":
				name = v.Value
			case "dynos":
				dynos = v
				continue
			}
			value.Content = append(value.Content, k, v)
		}
		kv, err := marshalKV(KeyApps+name, value)
		if err != nil {
			return nil, err
		}
		out = append(out, kv)
		if dynos == nil {
			continue
		}
		for _, dy := range dynos.Content {
			var dyName string
			dv := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
			for i := 0; i+1 < len(dy.Content); i += 2 {
				k, v := dy.Content[i], dy.Content[i+1]
				if k.Value == "name" {
					dyName = v.Value
					continue
				}
				dv.Content = append(dv.Content, k, v)
			}
			kv, err := marshalKV(KeyDynos+name+"/"+dyName, dv)
			if err != nil {
				return nil, err
			}
			out = append(out, kv)
		}
	}
	return out, nil
}

// marshalKV writes n as the YAML value of key.
func marshalKV(key string, n *yaml.Node) (KV, error) {
	data, err := yaml.Marshal(n)
	if err != nil {
		return KV{}, fmt.Errorf("writing the value of %s: %w", key, err)
	}
	return KV{Key: key, Value: strings.TrimSuffix(string(data), "\n")}, nil
}

// expand returns a copy of n with aliases replaced by what they name and
// merge keys by the pairs they merge, so that any part of it stands alone.
func expand(d *decoder, n *yaml.Node) *yaml.Node {
	n = deref(n)
	out := *n
	out.Anchor = ""
	out.Content = nil
	switch n.Kind {
	case yaml.MappingNode:
		for _, p := range d.pairs("", n, map[*yaml.Node]bool{}) {
			out.Content = append(out.Content, expand(d, p.k), expand(d, p.v))
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			out.Content = append(out.Content, expand(d, c))
		}
	}
	out.HeadComment, out.LineComment, out.FootComment = "", "", ""
	return &out
}
