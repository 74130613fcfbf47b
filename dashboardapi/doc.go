// Package dashboardapi is g0efilter's dashboard: the HTTP API that filters
// ship their events to and people read them from, a [Server] that serves it
// with a live stream and a web UI, the stores that keep the events, and a
// [Client] that ships a filter's events.
//
// Typical usage, in the dashboard:
//
//	store, err := dashboardapi.OpenSQLite("/data/events.db", dashboardapi.SQLiteConfig{MaxAge: 30 * 24 * time.Hour})
//	if err != nil {
//		return err
//	}
//	defer store.Close() // or dashboardapi.NewMemoryStore(5000)
//	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{
//		APIKey: apiKey, // filters present it; empty refuses ingest
//		Store:  store,
//		Logger: logger,
//	})
//	hs := &http.Server{Addr: ":8081", Handler: srv}
//	hs.RegisterOnShutdown(srv.Close) // ends the live streams
//	go hs.ListenAndServe()
//
// and in a filter, where its sinks are wired:
//
//	c, err := dashboardapi.NewClient(dashboardapi.ClientConfig{
//		URL:        "http://dashboard:8081", // DASHBOARD_HOST
//		APIKey:     apiKey,                  // DASHBOARD_API_KEY
//		StartDelay: 5 * time.Second,
//		Logger:     logger,
//	})
//	if err != nil {
//		return err
//	}
//	sink := events.Multi(logSink, c)
//	...
//	c.Close(ctx) // ships what is queued
//
// # API
//
// Every answer is JSON but the stream and the UI; errors are
// {"error":"..."} ([ErrorResponse]) with a 4xx or 5xx status.
//
//	GET    /health              Health; not rate limited
//	POST   /api/v1/logs         ingest a JSON array of events; API key
//	GET    /api/v1/logs         read: LogsResponse
//	DELETE /api/v1/logs         clear: ClearResponse
//	GET    /api/v1/events       Server-Sent Events stream of records
//	GET    /api/v1/info         Info, which the UI reads first
//	       /api/v1/unblocks...  remote unblock, when ServerConfig.Unblocks is set
//	GET    /                    the web UI (and /assets/)
//
// Events travel in the wire format of package events. The server gives
// each event it stores an ID, which grows by one per event and is never
// reused, and serves it as a [Record]: the event's JSON with "id" first.
//
// # Ingest
//
// A filter posts a JSON array of events with its key in the X-Api-Key
// header, compared in constant time. Without an API key configured the
// server refuses every ingest (403): it never takes events from anyone who
// asks. The body is limited ([ServerConfig.MaxBodyBytes], 413 beyond). Each
// event is checked alone: invalid ones are listed in
// [IngestResponse.Rejected] with the reason, and the valid ones of the same
// batch are stored. A batch with an Idempotency-Key that the server has
// answered recently gets the same answer again and is not stored twice.
//
// # Reading
//
// GET /api/v1/logs takes action (allowed, blocked, error), component, q (a
// text that the filter's host name, the name, or the source or destination
// address contains, ignoring case) and limit (at most
// [ServerConfig.ReadLimit], READ_LIMIT). Without since_id it returns the
// newest matching events (before before_id, when given); with since_id, the
// oldest ones after it, to read on page by page. Either way the events come
// oldest first, and [LogsResponse.LastID] tells where a stream should take
// over.
//
// # Stream
//
// GET /api/v1/events is a Server-Sent Events stream. It starts with a
// retry: line ([ServerConfig.SSERetry], SSE_RETRY_MS); then every record is
// one message whose id: is the record's ID and whose data: is the record.
// A stream resumes after the ID in the Last-Event-ID header, which browsers
// send when they reconnect, or in the last_event_id parameter: nothing is
// skipped and nothing repeated, unless the store dropped events before the
// client came back for them. Without either it starts with the next event
// stored. It takes the filters of a read. Other messages: "clear" when the
// store was cleared, with data {"last_id":N}: records up to N are gone;
// "reset" when the client had seen IDs the store never
// gave (a dashboard restarted without a database), and a comment as a
// heartbeat ([ServerConfig.Heartbeat]).
//
// Streams read the store themselves, from the ID they sent last; ingest only
// wakes them. So a slow or stuck client never holds up ingest or the other
// clients, and a client that does not read for
// [ServerConfig.StreamWriteTimeout] is dropped.
//
// # Limits
//
// Each client (by remote address) may make [ServerConfig.RateRPS] requests
// a second on average and [ServerConfig.RateBurst] at once (RATE_RPS,
// RATE_BURST); beyond that the answer is 429 with Retry-After in seconds.
// Behind a reverse proxy every request comes from the proxy, so the limit
// applies to all clients together.
//
// # Authentication
//
// Only ingest and the filters' unblock routes check the API key. The UI,
// reads, the stream and clearing do not authenticate anyone: put the
// dashboard behind a reverse proxy that does, and let only the API-key
// routes through without it.
//
// # Stores
//
// A [Store] keeps the events: [MemoryStore], a ring of the newest events
// (BUFFER_SIZE), or [SQLiteStore], a database file that survives restarts,
// with retention by count and age. Both pass the same test suite.
//
// # UI
//
// The web UI is embedded in the binary and needs no build step and nothing
// from another origin. It loads the newest events, then follows the stream:
// a table of decisions with filters and search, counters, a chart of allowed
// and blocked per minute, and the most blocked names. Everything that comes
// from the network is put in the page as text, and a Content-Security-Policy
// allows no inline script should that ever slip. Unblock buttons show only
// when [Info.Unblocks] is true.
//
// # Client
//
// A [Client] is an [events.Sink]: Emit queues the event and returns at
// once, dropping (and counting) it when the queue is full. One goroutine
// sends batches, after [ClientConfig.StartDelay], and retries a batch with
// backoff while the dashboard is down or busy, so events emitted meanwhile
// arrive once it is back, each once.
package dashboardapi
