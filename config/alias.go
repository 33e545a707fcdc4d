package config

import "go.yaml.in/yaml/v3"

// maxValues bounds the values of a file with every alias expanded. A few
// aliases to big lists (a list of apps that each alias a long dyno list)
// make a small file expand to billions of values; real configs have
// thousands.
const maxValues = 1_000_000

// checkAliases refuses a document whose anchors contain an alias to
// themselves, or whose aliases expand it past maxValues.
func (d *decoder) checkAliases(root *yaml.Node) bool {
	c := aliasCounter{sizes: make(map[*yaml.Node]int)}
	n := c.count(root)
	switch {
	case c.cycle != nil:
		d.problem(c.cycle, "", "alias *%s is inside its own anchor: want an anchor that does not contain itself", c.cycle.Value)
	case n > maxValues:
		d.problem(nil, "", "aliases expand the file to more than %d values: want fewer aliases", maxValues)
	default:
		return true
	}
	return false
}

// aliasCounter counts the values of a tree with aliases expanded.
type aliasCounter struct {
	sizes map[*yaml.Node]int // anchored node -> its count; -1 while counting it
	cycle *yaml.Node         // the first alias found inside its own anchor
}

// count returns the number of values under n, saturating past maxValues.
func (c *aliasCounter) count(n *yaml.Node) int {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		size, ok := c.sizes[n.Alias]
		switch {
		case ok && size < 0:
			c.cycle = n
			return maxValues + 1
		case ok:
			return size
		}
		n = n.Alias
	}
	if n.Anchor != "" {
		c.sizes[n] = -1
	}
	total := 1
	for _, child := range n.Content {
		if total += c.count(child); total > maxValues {
			break
		}
	}
	if n.Anchor != "" {
		c.sizes[n] = total
	}
	return total
}
