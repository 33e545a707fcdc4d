package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks the YAML node tree of one file. It records problems and
// warnings with their line instead of stopping at the first, so a file's
// problems are all reported at once.
type decoder struct {
	file  string
	dir   string // relative paths in the file are resolved against dir
	opts  LoadOptions
	probs []Problem
	warns []Problem

	appNames map[string]string // app name -> key of the app that has it
	domains  map[string]owner  // domain -> the app that has it
	adminAt  adminNodes        // where admin is, for checkAdmin
}

// owner names the app that holds a domain.
type owner struct {
	key  string // apps[0]
	name string // shop; "" when the app has no valid name
}

// problem records a problem at the line of n (0 when n is nil).
func (d *decoder) problem(n *yaml.Node, key, format string, args ...any) {
	d.probs = append(d.probs, d.at(n, key, fmt.Sprintf(format, args...)))
}

// warn records a non-fatal note at the line of n.
func (d *decoder) warn(n *yaml.Node, key, format string, args ...any) {
	d.warns = append(d.warns, d.at(n, key, fmt.Sprintf(format, args...)))
}

func (d *decoder) at(n *yaml.Node, key, msg string) Problem {
	p := Problem{File: d.file, Key: key, Msg: msg}
	if n != nil {
		p.Line = n.Line
	}
	return p
}

// path resolves a relative file path against the config file's directory.
func (d *decoder) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.dir, p)
}

// join appends name to the key path key.
func join(key, name string) string {
	if key == "" {
		return name
	}
	return key + "." + name
}

// index returns the key path of item i of the list at key.
func index(key string, i int) string {
	return key + "[" + strconv.Itoa(i) + "]"
}

// deref follows aliases (*name) to the anchored node. The bound guards
// against a malformed tree; the parser never chains aliases.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; i < 100 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an empty value (`key:`, `~` or `null`), which
// the decoder treats as the key being omitted.
func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// isEmpty reports whether n is null or an empty string.
func isEmpty(n *yaml.Node) bool {
	n = deref(n)
	return isNull(n) || n.Kind == yaml.ScalarNode && n.Value == ""
}

// describe names what n is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.AliasNode:
		return "an unresolved alias"
	case isNull(n):
		return "nothing"
	}
	return strconv.Quote(n.Value)
}

// scalar returns the value of the scalar n, reporting anything else (a
// list, a mapping, nothing) as not what was wanted.
func (d *decoder) scalar(key string, n *yaml.Node, want string) (*yaml.Node, bool) {
	v := deref(n)
	switch {
	case v.Kind != yaml.ScalarNode:
		d.problem(n, key, "want %s, got %s", want, describe(v))
	case isNull(v):
		d.problem(n, key, "missing value: want %s", want)
	default:
		return v, true
	}
	return v, false
}

// str returns the string value of n. A scalar of any type is taken as
// written (so 8080 is "8080"); nothing is "".
func (d *decoder) str(key string, n *yaml.Node) string {
	if isNull(n) {
		return ""
	}
	v, ok := d.scalar(key, n, "a string")
	if !ok {
		return ""
	}
	return v.Value
}

// duration sets *dst to the Go duration n, which must be greater than zero.
func (d *decoder) duration(key string, n *yaml.Node, dst *time.Duration) {
	const want = "a Go duration such as 10ms or 5s"
	v, ok := d.scalar(key, n, want)
	if !ok {
		return
	}
	t, err := time.ParseDuration(v.Value)
	switch {
	case err != nil:
		d.problem(n, key, "bad duration %q: want %s", v.Value, want)
	case t <= 0:
		d.problem(n, key, "bad duration %q: want more than zero, such as 10ms or 5s", v.Value)
	default:
		*dst = t
	}
}

// size sets *dst to the whole number n, which must be greater than zero;
// example is a good value to show in the message (the key's default).
func (d *decoder) size(key string, n *yaml.Node, dst *int, example int) {
	d.whole(key, n, dst, 1, maxInt, "a whole number greater than zero, such as "+strconv.Itoa(example))
}

// maxInt is the largest int, the bound of a key without one of its own.
const maxInt = int(^uint(0) >> 1)

// whole sets *dst to the whole number n, which must be from lo to hi; want
// says what is allowed, for the message. An explicit 0 where lo is 0 is
// kept: only an omitted key takes the default.
func (d *decoder) whole(key string, n *yaml.Node, dst *int, lo, hi int, want string) {
	v, ok := d.scalar(key, n, want)
	if !ok {
		return
	}
	var i int
	if v.ShortTag() != "!!int" || v.Decode(&i) != nil || i < lo || i > hi {
		d.problem(n, key, "bad number %q: want %s", v.Value, want)
		return
	}
	*dst = i
}

// boolean sets *dst to the boolean n (true or false).
func (d *decoder) boolean(key string, n *yaml.Node, dst *bool) {
	const want = "true or false"
	v, ok := d.scalar(key, n, want)
	if !ok {
		return
	}
	var b bool
	if v.ShortTag() != "!!bool" || v.Decode(&b) != nil {
		d.problem(n, key, "bad value %q: want %s", v.Value, want)
		return
	}
	*dst = b
}

// list calls each with the key path and node of every item of the list n.
// Nothing is an empty list. It reports whether n was a list or nothing.
func (d *decoder) list(key string, n *yaml.Node, each func(key string, item *yaml.Node)) bool {
	v := deref(n)
	if isNull(v) {
		return true
	}
	if v.Kind != yaml.SequenceNode {
		d.problem(n, key, "want a list, got %s", describe(v))
		return false
	}
	for i, item := range v.Content {
		each(index(key, i), item)
	}
	return true
}

// strList returns the list of non-empty strings n. Problems name the key
// of the list and the line of the item.
func (d *decoder) strList(key string, n *yaml.Node, what string) []string {
	out := []string{}
	d.list(key, n, func(_ string, item *yaml.Node) {
		s := d.str(key, item)
		if s == "" && deref(item).Kind == yaml.ScalarNode {
			d.problem(item, key, "empty %s in the list", what)
			return
		}
		if s != "" {
			out = append(out, s)
		}
	})
	return out
}

// field is one key a mapping may hold and how its value is decoded; key is
// the value's key path.
type field struct {
	name   string
	decode func(key string, v *yaml.Node)
}

// fieldNames lists the names of fs for messages: "http, https, admin".
func fieldNames(fs []field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

// section decodes an optional mapping: nothing is the same as the key
// being omitted.
func (d *decoder) section(key string, n *yaml.Node, fs []field) {
	if !isNull(n) {
		d.fields(key, n, fs)
	}
}

// fields decodes the mapping n with fs, refusing keys not in fs and keys
// given twice. It returns the pairs present, by key name, and whether n
// was a mapping at all.
func (d *decoder) fields(key string, n *yaml.Node, fs []field) (map[string]pair, bool) {
	want := "a mapping with keys " + fieldNames(fs)
	return d.mapping(key, n, want, func(name string, p pair) {
		for _, f := range fs {
			if f.name == name {
				f.decode(join(key, name), p.v)
				return
			}
		}
		d.problem(p.k, key, "unknown key %q: allowed keys are %s", name, fieldNames(fs))
	})
}
