package lines

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHubRecent(t *testing.T) {
	h := New(3, 0)
	assert.Empty(t, h.Recent("shop", 10), "no line published yet")
	h.Publish("shop", []byte("a"))
	h.Publish("shop", []byte("b"))
	assert.Equal(t, []string{"a", "b"}, h.Recent("shop", 10))
	h.Publish("shop", []byte("c"))
	h.Publish("shop", []byte("d"))
	assert.Equal(t, []string{"b", "c", "d"}, h.Recent("shop", 10), "the ring keeps the last 3")
	assert.Equal(t, []string{"c", "d"}, h.Recent("shop", 2))
	assert.Empty(t, h.Recent("blog", 10), "lines of one app are not another's")
}

func TestHubSubscribe(t *testing.T) {
	h := New(10, 2)
	s := h.Subscribe("shop")
	h.Publish("blog", []byte("other"))
	h.Publish("shop", []byte("one"))
	h.Publish("shop", []byte("two"))
	h.Publish("shop", []byte("three")) // the buffer holds 2: dropped, Publish does not wait
	assert.Equal(t, "one", <-s.Lines())
	assert.Equal(t, "two", <-s.Lines())
	assert.Equal(t, uint64(1), s.Dropped())
	assert.Equal(t, 1, h.Viewers("shop"))
	s.Close()
	s.Close()
	_, open := <-s.Lines()
	assert.False(t, open, "Close closes the channel")
	assert.Equal(t, 0, h.Viewers("shop"))
	h.Publish("shop", []byte("after")) // no viewer left: no send on the closed channel
}

// TestHubConcurrent publishes from many goroutines while viewers come and
// go (run with -race).
func TestHubConcurrent(t *testing.T) {
	h := New(100, 8)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 500 {
				h.Publish("shop", fmt.Appendf(nil, "p%d line %d", p, i))
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 20 {
				s := h.Subscribe("shop")
				select {
				case <-s.Lines():
				default:
				}
				s.Close()
			}
		})
	}
	wg.Wait()
	require.Len(t, h.Recent("shop", 1000), 100)
}

func TestHubPublishAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are off under -race; skipped under -short")
	}
	h := New(100, 8)
	line := []byte("at=info method=GET path=\"/\" host=shop.example.com status=200")
	for range 200 {
		h.Publish("shop", line)
	}
	allocs := testing.AllocsPerRun(1000, func() { h.Publish("shop", line) })
	assert.Zero(t, allocs, "Publish with no viewer, warm ring")
}

func BenchmarkHubPublish(b *testing.B) {
	line := []byte("at=info method=GET path=\"/\" host=shop.example.com request_id=0123456789abcdef fwd=\"127.0.0.1\" dyno=web.1 connect=0ms service=1ms status=200 bytes=12 protocol=http")
	for _, viewers := range []int{0, 10} {
		b.Run(fmt.Sprintf("viewers=%d", viewers), func(b *testing.B) {
			h := New(DefaultKeep, DefaultBuffer)
			for range viewers {
				s := h.Subscribe("shop")
				defer s.Close()
				go func() {
					for range s.Lines() {
					}
				}()
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					h.Publish("shop", line)
				}
			})
		})
	}
}
