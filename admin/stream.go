package admin

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Timing of the live line stream.
const (
	// keepAlive is how often an idle stream sends a comment, so proxies
	// and the browser keep it open.
	keepAlive = 15 * time.Second
	// streamWrite bounds each write to a viewer.
	streamWrite = 10 * time.Second
	// streamEvery is the least time between two writes to a viewer, and
	// batch the most lines of one write: a viewer gets at most 2,560
	// lines a second in 10 writes, whatever the request rate, so viewers
	// cost the router little CPU under load; the rest is dropped (and
	// counted) by the feed's buffer, never waited for.
	streamEvery = 100 * time.Millisecond
	batch       = 256
)

// stream serves app's live router lines as server-sent events: each line
// one "data:" event, "event: dropped" with the count of lines lost when
// the viewer fell behind (at most streamEvery apart, batch lines at a
// time), and "event: reauth" when the caller's
// authorisation decision ends (at most authz_ttl): the stream closes then,
// and the browser's EventSource reconnects, which checks the caller again.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, c *caller, app string) {
	sub, err := s.backend.Subscribe(app)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	defer sub.Close()
	left := c.until.Sub(s.now())
	if left <= 0 {
		left = time.Millisecond
	}
	end := time.NewTimer(left)
	defer end.Stop()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()

	rc := http.NewResponseController(w)
	// The admin listener's read timeout bounds reading a request; a
	// stream outlives it, and a read deadline passing would end it.
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	buf := []byte("retry: 2000\n: live router lines\n\n")
	var dropped uint64
	send := func() bool {
		if d := sub.Dropped(); d != dropped {
			dropped = d
			buf = append(buf, "event: dropped\ndata: "...)
			buf = strconv.AppendUint(buf, d, 10)
			buf = append(buf, "\n\n"...)
		}
		rc.SetWriteDeadline(time.Now().Add(streamWrite))
		_, err := w.Write(buf)
		buf = buf[:0]
		return err == nil && rc.Flush() == nil
	}
	reauth := func() {
		buf = append(buf, "event: reauth\ndata: authorisation to be checked again\n\n"...)
		send()
	}
	if !send() {
		return
	}
	pace := time.NewTimer(0)
	defer pace.Stop()
	for {
		// Wait out the pace first, so lines that come meanwhile go out in
		// one write.
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			reauth()
			return
		case <-pace.C:
		}
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			reauth()
			return
		case <-tick.C:
			buf = append(buf, ": keep-alive\n\n"...)
		case line, ok := <-sub.Lines():
			if !ok {
				return
			}
			buf = appendEvent(buf, line)
		more:
			for range batch - 1 {
				select {
				case line, ok := <-sub.Lines():
					if !ok {
						break more
					}
					buf = appendEvent(buf, line)
				default:
					break more
				}
			}
		}
		if !send() {
			return
		}
		pace.Reset(streamEvery)
	}
}

// appendEvent appends one SSE data event; a line break inside the line
// (never in a router line) would end the field, so it becomes a space.
func appendEvent(buf []byte, line string) []byte {
	buf = append(buf, "data: "...)
	if strings.ContainsAny(line, "\r\n") {
		line = strings.NewReplacer("\r", " ", "\n", " ").Replace(line)
	}
	buf = append(buf, line...)
	return append(buf, "\n\n"...)
}
