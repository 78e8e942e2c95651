package todo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"time"
)

// hub hands the projector's committed changes to the event streams open
// on their list. A subscriber that falls behind is dropped (its channel
// closed): its client reconnects with Last-Event-ID and reads what it
// missed from the events topic, so a slow client never slows the
// projector nor loses a change.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan change]struct{}
}

func newHub() *hub { return &hub{subs: map[string]map[chan change]struct{}{}} }

func (h *hub) subscribe(list string) chan change {
	ch := make(chan change, 256)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[list] == nil {
		h.subs[list] = map[chan change]struct{}{}
	}
	h.subs[list][ch] = struct{}{}
	return ch
}

func (h *hub) unsubscribe(list string, ch chan change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[list][ch]; ok {
		delete(h.subs[list], ch)
		close(ch)
	}
	if len(h.subs[list]) == 0 {
		delete(h.subs, list)
	}
}

func (h *hub) publish(c change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[c.list] {
		select {
		case ch <- c:
		default: // behind: drop it, it resumes from the topic
			delete(h.subs[c.list], ch)
			close(ch)
		}
	}
}

// streamEvent is one server-sent event's data.
type streamEvent struct {
	List    string `json:"list"`
	Version int64  `json:"version"`
	Type    string `json:"type"`
	Event   any    `json:"event"`
}

// sseHeartbeat keeps proxies from closing an idle stream.
const sseHeartbeat = 15 * time.Second

// serveEvents streams a list's changes as server-sent events, each with
// the list's version as its id: first those after Last-Event-ID (or
// ?after=, 0 by default: the whole history) read from the events topic,
// then each change as the projector commits it. Subscribing before the
// history is read leaves no gap; versions already sent are skipped.
func (s *System) serveEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	after, err := lastEventID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Errorf("streaming unsupported"))
		return
	}
	live := s.hub.subscribe(id)
	defer s.hub.unsubscribe(id, live)
	last := after
	send := func(c change) {
		if c.version <= last {
			return
		}
		last = c.version
		data, _ := json.Marshal(streamEvent{List: c.list, Version: c.version, Type: reflect.TypeOf(c.event).Name(), Event: c.event})
		fmt.Fprintf(w, "id: %d\nevent: change\ndata: %s\n\n", c.version, data)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	if err := s.history(r.Context(), id, after, send); err != nil {
		if r.Context().Err() == nil {
			s.log.Warn("event stream: reading the list's history failed; the client reconnects", "list", id, "err", err)
		}
		return
	}
	fl.Flush()
	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case c, ok := <-live:
			if !ok {
				return // fell behind: the client resumes with Last-Event-ID
			}
			send(c)
		case <-beat.C:
			fmt.Fprint(w, ": heartbeat\n\n")
		}
		fl.Flush()
	}
}

func lastEventID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("after")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("Last-Event-ID (or ?after=) %q: want a list version, a number of 0 or more", v)
	}
	return n, nil
}

// history reads the list's events after version from the events topic
// (its home partition), decoded, and gives each to fn in order.
func (s *System) history(ctx context.Context, list string, after int64, fn func(change)) error {
	return s.events.read(ctx, list, func(c change) {
		if c.version > after {
			fn(c)
		}
	})
}
