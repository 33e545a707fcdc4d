package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a config file, located by line and key.
type Problem struct {
	File string // the file name as given to Load or Parse
	Line int    // 1-based line in File; 0 when the problem is about the whole file
	Key  string // key path such as apps[0].dynos[1].address; "" for the whole file
	Msg  string // what is wrong and what is allowed
}

// String returns the problem as FILE:LINE: KEY: MSG, the shape of SPEC.md
// section 1. The line is left out when it is 0 and the key when it is "".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors is every problem found in one config file, in file order. Parse
// and Load return it when the file is not a valid config.
type Errors struct {
	Problems []Problem
}

// Error returns one line per problem, joined with "\n".
func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortByLine puts problems in file order; problems on one line keep the
// order they were found in.
func sortByLine(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
}
