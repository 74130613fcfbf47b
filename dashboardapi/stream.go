package dashboardapi

import (
	"bufio"
	"context"
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
	hasResume, err := resumeFrom(r, &q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
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

	sw := s.startSSE(w)
	sw.arm()
	sw.bw.WriteString("retry: " + strconv.FormatInt(s.cfg.SSERetry.Milliseconds(), 10) + "\n\n")
	if reset {
		sw.bw.WriteString("event: reset\ndata: {}\n\n")
	}
	clears := s.clears.Load()
	send := func() bool {
		if c := s.clears.Load(); c != clears {
			clears = c
			sw.bw.WriteString(`event: clear` + "\n" + `data: {"last_id":` + strconv.FormatUint(s.lastCleared.Load(), 10) + "}\n\n")
		}
		if err := s.sendSince(ctx, sw, &q); err != nil {
			s.log.Debug("dashboard: stream ended", logKeyRemote, r.RemoteAddr, logKeyErr, err)
			return false
		}
		return true
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
			sw.arm()
			sw.bw.WriteString(": ping\n\n")
			if sw.flush() != nil {
				return
			}
		}
	}
}

// resumeFrom sets q.After from the client's Last-Event-ID header (or
// last_event_id parameter, for clients that cannot set headers), and
// reports whether it gave one.
func resumeFrom(r *http.Request, q *Query) (bool, error) {
	resume := r.Header.Get("Last-Event-ID")
	if resume == "" {
		resume = r.URL.Query().Get("last_event_id")
	}
	if resume == "" {
		return false, nil
	}
	var err error
	q.After, err = parseID(resume, "Last-Event-ID")
	return err == nil, err
}

// sseWriter writes a server-sent event stream with a deadline per write.
type sseWriter struct {
	rc      *http.ResponseController
	bw      *bufio.Writer
	timeout time.Duration
	buf     []byte // one event, reused
}

// startSSE answers the request with an event stream. The request has been
// read: the server's ReadTimeout must not bound the stream's life, nor its
// WriteTimeout, meant for short answers, the writes (arm sets theirs).
func (s *Server) startSSE(w http.ResponseWriter) *sseWriter {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	return &sseWriter{rc: rc, bw: bufio.NewWriterSize(w, 16<<10), timeout: s.cfg.StreamWriteTimeout, buf: make([]byte, 0, 1024)}
}

// arm gives the writes that follow the stream's write timeout.
func (sw *sseWriter) arm() { sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout)) }

// flush sends what is buffered to the client.
func (sw *sseWriter) flush() error {
	if err := sw.bw.Flush(); err != nil {
		return err
	}
	return sw.rc.Flush()
}

// record buffers one record as an event with its ID.
func (sw *sseWriter) record(rec *Record) {
	data, err := rec.MarshalJSON()
	if err != nil {
		return // stored events always encode
	}
	sw.buf = append(sw.buf[:0], "id: "...)
	sw.buf = strconv.AppendUint(sw.buf, rec.ID, 10)
	sw.buf = append(sw.buf, "\ndata: "...)
	sw.buf = append(sw.buf, data...)
	sw.buf = append(sw.buf, "\n\n"...)
	sw.bw.Write(sw.buf)
}

// sendSince writes every record after q.After, oldest first, a chunk at a
// time, and flushes; q.After follows what was sent.
func (s *Server) sendSince(ctx context.Context, sw *sseWriter, q *Query) error {
	q.Limit, q.Oldest = streamChunk, true
	for {
		sw.arm()
		recs, more, err := s.store.Query(ctx, *q)
		if err != nil {
			return err
		}
		for i := range recs {
			sw.record(&recs[i])
			q.After = recs[i].ID
		}
		if err := sw.flush(); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}
