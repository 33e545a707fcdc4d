package logging

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecentKeepsTheLastLines(t *testing.T) {
	r := NewRecent(3)
	assert.Empty(t, r.Last(10))
	for i := range 5 {
		r.Add([]byte("line " + strconv.Itoa(i) + "\n"))
	}
	assert.Equal(t, []string{"line 2", "line 3", "line 4"}, r.Last(10))
	assert.Equal(t, []string{"line 4"}, r.Last(1))
	assert.Empty(t, r.Last(0))
}

func TestRecentCutsHugeLines(t *testing.T) {
	r := NewRecent(2)
	r.Add(bytes.Repeat([]byte("x"), 3*maxRecentLine))
	assert.Len(t, r.Last(1)[0], maxRecentLine)
}

func TestRecentSubscription(t *testing.T) {
	r := NewRecent(4)
	r.Add([]byte("before\n"))
	s := r.Subscribe()
	assert.Equal(t, 1, r.Subscribers())
	select {
	case l := <-s.Lines():
		t.Fatalf("a line before the subscription: %q", l)
	default:
	}
	r.Add([]byte("a\n"))
	r.Add([]byte("b\n"))
	assert.Equal(t, "a", <-s.Lines())
	assert.Equal(t, "b", <-s.Lines())

	// A reader that does not read never holds the writer up: what does not
	// fit its buffer is dropped and counted.
	for i := range SubscriberBuffer + 10 {
		r.Add([]byte(strconv.Itoa(i) + "\n"))
	}
	assert.Equal(t, uint64(10), s.Dropped())
	assert.Equal(t, "0", <-s.Lines())

	s.Close()
	s.Close()
	assert.Zero(t, r.Subscribers())
	n := 0
	for range s.Lines() {
		n++
	}
	assert.Equal(t, SubscriberBuffer-1, n, "the buffered lines are still read, then the channel is closed")
	r.Add([]byte("after\n")) // no send on the closed channel
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
	kept := r.Last(10)
	require.Len(t, kept, 1)
	written := strings.SplitAfter(out.String(), "\n")
	assert.Equal(t, written[0], kept[0]+"\n", "the recent line is the line written")
}

func TestRecentNil(t *testing.T) {
	var r *Recent
	r.Add([]byte("x\n"))
	assert.Empty(t, r.Last(5))
	s := r.Subscribe()
	s.Close()
	_, open := <-s.Lines()
	assert.False(t, open)
}

// BenchmarkRecentAdd is a router line's cost in the app's ring with 0 or
// 10 live readers: "viewers" readers take each line as it comes (every
// send hands a line to a waiting goroutine: the worst case), "behind"
// readers read nothing (every send finds the buffer full and drops: a
// stream under load, which drains its buffer only every 100 ms).
func BenchmarkRecentAdd(b *testing.B) {
	line := []byte(strings.Repeat("x", 300) + "\n")
	for _, c := range []struct {
		viewers int
		behind  bool
	}{{0, false}, {10, false}, {10, true}} {
		name := strconv.Itoa(c.viewers) + "viewers"
		if c.behind {
			name = strconv.Itoa(c.viewers) + "behind"
		}
		b.Run(name, func(b *testing.B) {
			r := NewRecent(RecentLines)
			for range c.viewers {
				s := r.Subscribe()
				if !c.behind {
					go func() {
						for range s.Lines() {
						}
					}()
				}
				defer s.Close()
			}
			b.ReportAllocs()
			for b.Loop() {
				r.Add(line)
			}
		})
	}
}
