package logging

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecentKeepsTheLastLines(t *testing.T) {
	r := NewRecent(3)
	lines, next := r.Last(10)
	assert.Empty(t, lines)
	assert.Zero(t, next)
	for i := range 5 {
		r.Add([]byte("line " + strconv.Itoa(i) + "\n"))
	}
	lines, next = r.Last(10)
	assert.Equal(t, uint64(5), next)
	require.Len(t, lines, 3)
	assert.Equal(t, "line 2\n", string(lines[0]))
	assert.Equal(t, "line 4\n", string(lines[2]))
	lines, _ = r.Last(1)
	assert.Equal(t, []string{"line 4\n"}, strs(lines))

	// What Last returned is a copy: the ring reusing its slot does not
	// change it.
	r.Add([]byte("line 5\n"))
	assert.Equal(t, "line 4\n", string(lines[0]))
}

func TestRecentCutsHugeLines(t *testing.T) {
	r := NewRecent(2)
	r.Add(bytes.Repeat([]byte("x"), 3*maxRecentLine))
	lines, _ := r.Last(1)
	assert.Len(t, lines[0], maxRecentLine)
}

func TestRecentSubscription(t *testing.T) {
	r := NewRecent(4)
	r.Add([]byte("before\n"))
	s := r.Subscribe()
	defer s.Close()
	assert.Equal(t, 1, r.Subscribers())
	select {
	case <-s.Wake():
		t.Fatal("woken with no line added")
	default:
	}
	r.Add([]byte("a\n"))
	r.Add([]byte("b\n"))
	<-s.Wake()
	lines, lost := s.Next()
	assert.Equal(t, []string{"a\n", "b\n"}, strs(lines))
	assert.Zero(t, lost)

	// A reader that does not read never holds the writer up; it loses the
	// oldest lines and is told how many.
	for i := range 10 {
		r.Add([]byte(strconv.Itoa(i) + "\n"))
	}
	lines, lost = s.Next()
	assert.Equal(t, []string{"6\n", "7\n", "8\n", "9\n"}, strs(lines))
	assert.Equal(t, uint64(6), lost)

	s.Close()
	assert.Zero(t, r.Subscribers())
}

func TestRouterLogFeedsRecent(t *testing.T) {
	var out bytes.Buffer
	rl := NewRouterLog(&out, "app", nil)
	r := NewRecent(10)
	l := Line{Connect: -1, Service: -1, Bytes: -1, Method: []byte("GET"), Path: []byte("/x"), Status: 200, Recent: r}
	rl.Write(&l)
	l.Recent = nil
	rl.Write(&l)
	require.NoError(t, rl.Close())
	lines, _ := r.Last(10)
	require.Len(t, lines, 1)
	written := bytes.SplitAfter(out.Bytes(), []byte("\n"))
	assert.Equal(t, string(written[0]), string(lines[0]), "the recent line is the line written")
}

func TestRecentNil(t *testing.T) {
	var r *Recent
	r.Add([]byte("x\n"))
	lines, _ := r.Last(5)
	assert.Empty(t, lines)
	s := r.Subscribe()
	lines, _ = s.Next()
	assert.Empty(t, lines)
	s.Close()
}

func strs(b [][]byte) []string {
	out := make([]string, len(b))
	for i := range b {
		out[i] = string(b[i])
	}
	return out
}
