package dashboardapi

import (
	"bufio"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// streamChunk is how many records a stream reads from the store at a time.
const streamChunk = 500

// hub wakes the streams when the store changes. It carries no data: each
// stream reads what it has not sent yet from the store, by ID, so a slow
// stream never holds up ingest and never misses or repeats an event
// (unless it falls so far behind that the store has dropped what it had
// not sent).
type hub struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func (h *hub) init() { h.subs = make(map[chan struct{}]struct{}) }

func (h *hub) subscribe() chan struct{} {
	c := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	return c
}

func (h *hub) unsubscribe(c chan struct{}) {
	h.mu.Lock()
	delete(h.subs, c)
	h.mu.Unlock()
}

// notify wakes every stream without waiting: a stream that has not yet
// taken the last wake-up needs no second one.
func (h *hub) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// stream serves GET /api/v1/events, a Server-Sent Events stream of records.
//
// It resumes after the ID in the Last-Event-ID header (sent by browsers
// when they reconnect) or the last_event_id parameter; without either it
// starts with the events stored from then on. It takes the filters of a
// read (action, component, q).
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	resume, hasResume := r.Header.Get("Last-Event-ID"), false
	if resume == "" {
		resume = r.URL.Query().Get("last_event_id")
	}
	if resume != "" {
		if q.After, err = parseID(resume, "Last-Event-ID"); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		hasResume = true
	}

	// Subscribe before reading the store, so that nothing stored between
	// the read and the wait goes unnoticed.
	wake := s.hub.subscribe()
	defer s.hub.unsubscribe(wake)
	s.streams.Add(1)
	defer s.streams.Add(-1)

	ctx := r.Context()
	st, err := s.store.Stats(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	reset := false
	switch {
	case !hasResume:
		q.After = st.LastID
	case q.After > st.LastID:
		// The client saw IDs this store never gave: the dashboard was
		// restarted with a memory store. Tell it to start again.
		reset, q.After = true, 0
	}

	rc := http.NewResponseController(w)
	// The request has been read: the server's ReadTimeout must not bound
	// the stream's life.
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 16<<10)

	// arm gives the writes that follow the stream's write timeout; the
	// server's WriteTimeout, meant for short answers, no longer applies.
	arm := func() { rc.SetWriteDeadline(time.Now().Add(s.cfg.StreamWriteTimeout)) }
	flush := func() bool {
		if err := bw.Flush(); err != nil {
			return false
		}
		return rc.Flush() == nil
	}

	arm()
	bw.WriteString("retry: ")
	bw.WriteString(strconv.FormatInt(s.cfg.SSERetry.Milliseconds(), 10))
	bw.WriteString("\n\n")
	if reset {
		bw.WriteString("event: reset\ndata: {}\n\n")
	}
	clears := s.clears.Load()

	// send writes every record after q.After and flushes.
	buf := make([]byte, 0, 1024)
	send := func() bool {
		if c := s.clears.Load(); c != clears {
			clears = c
			bw.WriteString(`event: clear` + "\n" + `data: {"last_id":`)
			bw.WriteString(strconv.FormatUint(s.lastCleared.Load(), 10))
			bw.WriteString("}\n\n")
		}
		q.Limit, q.Oldest = streamChunk, true
		for {
			arm()
			recs, more, err := s.store.Query(ctx, q)
			if err != nil {
				s.log.Debug("dashboard: stream ended", logKeyRemote, r.RemoteAddr, logKeyErr, err)
				return false
			}
			for i := range recs {
				data, err := recs[i].MarshalJSON()
				if err != nil {
					continue // stored events always encode
				}
				buf = append(buf[:0], "id: "...)
				buf = strconv.AppendUint(buf, recs[i].ID, 10)
				buf = append(buf, "\ndata: "...)
				buf = append(buf, data...)
				buf = append(buf, "\n\n"...)
				bw.Write(buf)
				q.After = recs[i].ID
			}
			if !flush() {
				return false
			}
			if !more {
				return true
			}
		}
	}

	if !send() {
		return
	}
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-wake:
			if !send() {
				return
			}
		case <-beat.C:
			// A stream lasts no longer than the sign-in it began with:
			// after a sign-out or the session's expiry the browser must
			// sign in again to go on.
			if p, ok := PrincipalFrom(r.Context()); ok && p.session != "" && !s.auth.sessions.alive(p.session) {
				return
			}
			arm()
			bw.WriteString(": ping\n\n")
			if !flush() {
				return
			}
		}
	}
}
