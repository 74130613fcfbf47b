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
//	users, err := dashboardapi.LoadUsers("/data/users") // written by AddUser
//	if err != nil {
//		return err
//	}
//	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{
//		Keys:   []dashboardapi.FilterKey{{Key: apiKey}}, // filters present it; none refuses ingest
//		Auth:   dashboardapi.AuthConfig{Mode: dashboardapi.AuthLocal, Users: users},
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
//	GET    /health              Health; anyone; not rate limited
//	POST   /api/v1/logs         ingest a JSON array of events; filter key
//	GET    /api/v1/logs         read: LogsResponse; viewer
//	DELETE /api/v1/logs         clear: ClearResponse; operator
//	GET    /api/v1/events       Server-Sent Events stream of records; viewer
//	GET    /api/v1/info         Info, which the UI reads first; viewer
//	GET    /api/v1/suggest?hostname=X    a policy.yaml suggested from a filter's events; viewer
//	GET    /api/v1/observed?hostname=X   ObservedResponse: what a filter's workload reached; viewer
//	GET    /                    the web UI; viewer (/assets/: anyone)
//	GET    /login, POST /login  AuthLocal's sign-in; POST /logout
//	GET    /auth/oidc/login, /auth/oidc/callback   AuthOIDC's sign-in
//
// and, when [ServerConfig.Unblocks] is set (see Remote unblock):
//
//	POST   /api/v1/unblocks          ask a filter to allow a target: UnblockRequest; operator
//	GET    /api/v1/unblocks/status   every request and its state: UnblocksResponse; viewer
//	GET    /api/v1/unblocks/audit    who asked for what, and what came of it; viewer
//	GET    /api/v1/unblocks?hostname=X   a filter's pending requests; filter key
//	POST   /api/v1/unblocks/ack      a filter's results; filter key
//
// Events travel in the wire format of package events. The server gives
// each event it stores an ID, which grows by one per event and is never
// reused, and serves it as a [Record]: the event's JSON with "id" first.
//
// # Ingest
//
// A filter posts a JSON array of events with its key in the X-Api-Key
// header, compared in constant time. Without a key configured the
// server refuses every ingest (403): it never takes events from anyone who
// asks. A key bound to a hostname ([FilterKey.Hostname]) may post only
// events of that host (403 otherwise). The body is limited ([ServerConfig.MaxBodyBytes], 413 beyond). Each
// event is checked alone: invalid ones are listed in
// [IngestResponse.Rejected] with the reason, and the valid ones of the same
// batch are stored. A batch with an Idempotency-Key that the server has
// answered recently gets the same answer again and is not stored twice.
//
// # Reading
//
// GET /api/v1/logs takes action (allowed, blocked, would-block, error),
// component, q (a
// text that the filter's host name, the name, the source or destination
// address, the reason or the rule contains, ignoring case: what the page's
// search box looks at) and limit (at most
// [ServerConfig.ReadLimit], READ_LIMIT). Without since_id it returns the
// newest matching events (before before_id, when given); with since_id, the
// oldest ones after it, to read on page by page. Either way the events come
// oldest first, and [LogsResponse.LastID] tells where a stream should take
// over.
//
// # What a filter's workload did
//
// GET /api/v1/suggest and GET /api/v1/observed read the stored events of
// one filter (hostname=X, its HOSTNAME; dns=1 for a filter in dns mode)
// with the suggest package's rules. The first answers a policy.yaml that
// allows what the workload did, to download and review; the second, an
// [ObservedResponse]: every destination by registrable domain, groups
// with a would-block destination first (audit mode), then blocked, then
// allowed, each with its counts, first and last time, latest verdict,
// the entry of that policy that allows it, and what remote unblock would
// ask for to allow it. Neither knows the filter's policy; both read at
// most the oldest 200 000 events held.
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
// Filters and people are told apart. A filter presents one of
// [ServerConfig.Keys] (or APIKey) and reaches only ingest and the unblock
// poll and acknowledgement; [CheckFilterKey] refuses weak keys. A person
// signs in as [AuthConfig] says: local accounts ([Users], bcrypt, a
// session cookie that is HttpOnly and SameSite=Strict), a forward-auth
// proxy's user header believed only from [AuthConfig.TrustedProxies], or
// OpenID Connect ([NewOIDC]: the code flow with PKCE). [AuthNone] lets
// everyone in, and the zero value nobody. A [RoleViewer] reads and streams;
// a [RoleOperator] also clears and asks for unblocks. A person's request
// that changes something must carry the CSRF token of [Info.CSRFToken] in
// the X-Csrf-Token header and pass [http.CrossOriginProtection]. Handlers
// find who made a request with [PrincipalFrom]. Sign-in attempts are
// limited per address and per user name.
//
// # Remote unblock
//
// [Unblocks], plugged into [ServerConfig.Unblocks], lets people ask a
// filter to allow a blocked destination. Typical usage:
//
//	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{
//		APIKey:   apiKey,
//		Unblocks: dashboardapi.NewUnblocks(dashboardapi.UnblocksConfig{Logger: logger}),
//	})
//
// and in a filter, every poll interval:
//
//	reqs, err := client.PendingUnblocks(ctx, hostname)
//	... add each target to the policy file ...
//	err = client.AckUnblocks(ctx, acks)
//
// POST /api/v1/unblocks takes {"hostname":"web-1","target":"example.com"}
// as JSON (other content types are refused, and so are cross-origin
// browser requests). The hostname is the filter's HOSTNAME as its events
// carry it. The target is validated and normalised with the policy
// package's rules ([Unblocks.ParseTarget]): a domain or a wildcard, or an
// IP address (made a /32 or /128) or CIDR prefix. What would allow
// everything or nearly is refused: "*", a wildcard over a top-level domain
// or a public suffix ("*.com", "*.co.uk", "*.github.io"), and prefixes
// wider than /8 (IPv4) or /32 (IPv6), 0.0.0.0/0 and ::/0 among them. The
// answer is the new request (201), or the pending request for the same
// filter and target (200): duplicates collapse.
//
// A request is pending until its filter acknowledges it as applied or
// failed (with the filter's reason), or until it expires: one that no
// filter has fetched for [UnblocksConfig.Expiry] (24h by default), since
// it was made or last fetched, becomes expired. Acknowledgements are
// idempotent: one for a request already applied or failed is answered
// [AckIgnored] and changes nothing; an unknown ID is answered [AckUnknown]
// without failing the others. An expired request takes a late
// acknowledgement's result, since the filter did act on it.
//
// Every request (refused ones too), acknowledgement and expiry is an
// [UnblockAudit] record, logged and served read-only: the time, the
// remote address, who the server authenticated (the person, or the filter
// and its key's fingerprint; never a name a client sent), X-Forwarded-For
// from a trusted proxy, the target, and the result. Requests and audit are
// kept in memory, [UnblocksConfig.MaxRecords] of each; with [OpenUnblocks]
// also in an [UnblockStore] such as the [SQLiteStore], so that they
// survive restarts.
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
// allows no inline script should that ever slip. Would-block verdicts
// (audit mode) are drawn apart from blocked ones, as an outline. Unblock
// buttons show only when [Info.Unblocks] is true and to operators, on
// blocked and would-block rows; a click asks for the row's name (or its
// destination address when it has none) on the row's filter, and the row
// then shows the request's state, polling until it is final.
//
// With one filter chosen, the page offers its Suggested policy.yaml and
// its Observed view (GET /api/v1/observed): the filter's destinations by
// registrable domain, would-block first, with their counts, first and
// last times, verdict and suggested entry, refreshed as events arrive.
// Its Allow button asks for a remote unblock of the destination's
// [ObservedDestination.Target] exactly as an Unblock button does, so the
// audit names who asked; it shows where Unblock buttons would.
//
// # Client
//
// A [Client] is an [events.Sink]: Emit queues the event and returns at
// once, dropping (and counting) it when the queue is full. One goroutine
// sends batches, after [ClientConfig.StartDelay], and retries a batch with
// backoff while the dashboard is down or busy, so events emitted meanwhile
// arrive once it is back, each once. [Client.PendingUnblocks] and
// [Client.AckUnblocks] are a filter's side of remote unblock.
package dashboardapi
