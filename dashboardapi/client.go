package dashboardapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/g0lab/g0efilter/events"
)

// Defaults of [ClientConfig].
const (
	DefaultClientQueueSize = 1024
	DefaultBatchSize       = 256
	DefaultClientTimeout   = 10 * time.Second
	DefaultMinBackoff      = 500 * time.Millisecond
	DefaultMaxBackoff      = 30 * time.Second
)

// ErrClientConfig is wrapped by the errors of [NewClient] for a config it
// cannot use.
var ErrClientConfig = errors.New("dashboardapi: invalid client config")

// ClientConfig configures a [Client]. URL and APIKey are required; every
// other field works at its zero value.
type ClientConfig struct {
	// URL is the dashboard's base URL (DASHBOARD_HOST), such as
	// "http://dashboard:8081" or "https://example.com/g0efilter".
	URL string
	// APIKey is sent in the X-Api-Key header (DASHBOARD_API_KEY).
	APIKey string
	// QueueSize is how many events may wait to be shipped
	// (DASHBOARD_QUEUE_SIZE), besides the batch in hand; more are dropped
	// and counted in [Client.Dropped]. Zero means 1024.
	QueueSize int
	// BatchSize is the most events sent in one request. Zero means 256.
	BatchSize int
	// StartDelay holds shipping back after NewClient, so that a dashboard
	// started at the same time can come up (DASHBOARD_START_DELAY);
	// events queue meanwhile. Zero means none.
	StartDelay time.Duration
	// Timeout bounds each request. Zero means 10s.
	Timeout time.Duration
	// MinBackoff is about the wait before retrying a batch the dashboard
	// did not take (it could not be reached, or answered 5xx, 408 or 429);
	// it doubles with each failure up to MaxBackoff, and each wait is
	// between half and all of it, at random. A Retry-After answer is
	// honoured up to MaxBackoff. Zero means 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// HTTPClient sends the requests. Nil means a client of its own.
	HTTPClient *http.Client
	// Logger receives shipping trouble: once when the dashboard becomes
	// unreachable, once when it is back, and refused batches. Nil means
	// discard.
	Logger *slog.Logger
}

// Client ships events to a dashboard. It is an [events.Sink]: Emit puts the
// event in an [events.Queue] and returns at once, and the queue's goroutine
// posts batches to POST /api/v1/logs, retrying a batch with backoff while the
// dashboard is down. Each batch carries an Idempotency-Key, so a batch
// retried after a lost answer is stored once. Make it with [NewClient] and
// end it with [Client.Close].
//
// [Client.PendingUnblocks] and [Client.AckUnblocks] are a filter's side of
// remote unblock: plain calls, made when the caller makes them, with the
// same URL, key and HTTP client.
type Client struct {
	cfg      ClientConfig
	endpoint string
	unblocks string // GET: pending unblocks; + "/ack": POST acks
	log      *slog.Logger

	queue    *events.Queue   // its goroutine ships, through deliver
	start    context.Context // done when shipping may start: StartDelay passed, or Close called
	startNow context.CancelFunc
	ctx      context.Context
	abort    context.CancelFunc // ends a request or wait in flight when Close gives up

	sent, dropped, rejected atomic.Uint64 // dropped adds to the queue's own count
	failing                 bool          // worker only: the last attempt failed
}

var _ events.Sink = (*Client)(nil)

// NewClient checks cfg and starts a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: URL %q: want http:// or https:// and a host", ErrClientConfig, cfg.URL)
	}
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("%w: APIKey is empty", ErrClientConfig)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultClientQueueSize
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultClientTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	c := &Client{
		cfg:      cfg,
		endpoint: u.JoinPath("api", "v1", "logs").String(),
		unblocks: u.JoinPath("api", "v1", "unblocks").String(),
		log:      cfg.Logger,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.start, c.startNow = context.WithTimeout(context.Background(), cfg.StartDelay)
	c.ctx, c.abort = context.WithCancel(context.Background())
	c.queue = events.NewBatchQueue(c.deliver, cfg.QueueSize, cfg.BatchSize)
	return c, nil
}

// Emit queues e for the dashboard without waiting. If the queue is full or
// the Client closed, e is dropped and counted in [Client.Dropped].
func (c *Client) Emit(e events.Event) { c.queue.Emit(e) }

// Sent returns how many events the dashboard stored.
func (c *Client) Sent() uint64 { return c.sent.Load() }

// Dropped returns how many events were not shipped: emitted to a full or
// closed queue, refused as a whole (a wrong API key, say), or still queued
// when Close gave up.
func (c *Client) Dropped() uint64 { return c.queue.Dropped() + c.dropped.Load() }

// Rejected returns how many events the dashboard refused as invalid.
func (c *Client) Rejected() uint64 { return c.rejected.Load() }

// Close stops accepting events and ships what is queued, at once even if
// the start delay has not passed. If ctx ends first, the request in flight
// is abandoned, the rest is dropped (and counted), and Close returns
// ctx.Err(). Close returns when the Client's goroutine has ended.
func (c *Client) Close(ctx context.Context) error {
	c.startNow()
	stop := context.AfterFunc(ctx, c.abort)
	err := c.queue.Close(ctx)
	if !stop() { // ctx ended and abandoned what was in flight
		err = ctx.Err()
	}
	c.abort()
	return err
}

// deliver is the queue's consumer: it ships each batch once shipping may
// start.
func (c *Client) deliver(batch []events.Event) {
	<-c.start.Done()
	c.ship(batch)
}

// ship delivers batch, retrying while the dashboard is unavailable, until
// it is taken, refused, or the Client is aborted.
func (c *Client) ship(batch []events.Event) {
	body, n := encodeBatch(batch)
	if skipped := len(batch) - n; skipped > 0 {
		c.rejected.Add(uint64(skipped)) // events the dashboard could not read either
	}
	if n == 0 {
		return
	}
	key := newBatchKey()
	backoff := c.cfg.MinBackoff
	for {
		if c.ctx.Err() != nil {
			c.dropped.Add(uint64(n))
			return
		}
		wait, out := c.post(body, n, key)
		switch out {
		case done:
			return
		case tooLarge:
			if len(batch) > 1 {
				c.ship(batch[:len(batch)/2])
				c.ship(batch[len(batch)/2:])
			} else {
				c.dropped.Add(uint64(n))
				c.log.Error("dashboard: event larger than the dashboard takes", logKeyDropped, n)
			}
			return
		}
		if wait <= 0 {
			// Half fixed, half random, so that filters that lost the
			// dashboard together do not all come back at the same moment.
			wait = backoff/2 + mathrand.N(backoff/2+1)
			backoff = min(backoff*2, c.cfg.MaxBackoff)
		}
		t := time.NewTimer(min(wait, c.cfg.MaxBackoff))
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
}

// outcome is what became of one attempt to post a batch.
type outcome int

const (
	done     outcome = iota // taken, or refused for good
	retry                   // send it again later
	tooLarge                // refused as too large: send it in halves
)

// post sends one batch of n events. When it says retry, wait, if positive,
// is the server's Retry-After.
func (c *Client) post(body []byte, n int, key string) (wait time.Duration, out outcome) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		c.dropped.Add(uint64(n))
		c.log.Error("dashboard: cannot make request", logKeyErr, err)
		return 0, done
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(APIKeyHeader, c.cfg.APIKey)
	req.Header.Set(IdempotencyKeyHeader, key)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		c.failed(err)
		return 0, retry
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))

	switch resp.StatusCode {
	case http.StatusOK, http.StatusBadRequest:
		var ir IngestResponse
		if err := json.Unmarshal(data, &ir); err == nil && (resp.StatusCode == http.StatusOK || len(ir.Rejected) > 0) {
			c.recovered()
			c.sent.Add(uint64(ir.Accepted))
			c.rejected.Add(uint64(len(ir.Rejected)))
			if len(ir.Rejected) > 0 {
				c.log.Warn("dashboard: events refused", logKeyRejected, len(ir.Rejected), logKeyErr, ir.Rejected[0].Error)
			}
			return 0, done
		}
	case http.StatusRequestEntityTooLarge:
		c.recovered()
		return 0, tooLarge
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		c.failed(fmt.Errorf("%s: %s", resp.Status, errorText(data)))
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			return time.Duration(s) * time.Second, retry
		}
		return 0, retry
	}
	// Anything else will not get better by asking again: a wrong key, a
	// body too large, a URL that is not a dashboard.
	c.recovered()
	c.dropped.Add(uint64(n))
	c.log.Error("dashboard: batch refused", logKeyBatch, n,
		logKeyErr, fmt.Errorf("%s: %s", resp.Status, errorText(data)))
	return 0, done
}

func (c *Client) failed(err error) {
	if c.ctx.Err() != nil {
		return
	}
	if !c.failing {
		c.failing = true
		c.log.Warn("dashboard unreachable, retrying", logKeyErr, err)
	}
}

func (c *Client) recovered() {
	if c.failing {
		c.failing = false
		c.log.Info("dashboard reachable again")
	}
}

// encodeBatch writes the JSON array of the events that encode, and how many
// that is.
func encodeBatch(batch []events.Event) ([]byte, int) {
	var b bytes.Buffer
	b.WriteByte('[')
	n := 0
	for i := range batch {
		data, err := batch[i].MarshalJSON()
		if err != nil {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(data)
		n++
	}
	b.WriteByte(']')
	return b.Bytes(), n
}

func errorText(data []byte) string {
	var er ErrorResponse
	if json.Unmarshal(data, &er) == nil && er.Error != "" {
		return er.Error
	}
	if len(data) > 200 {
		data = data[:200]
	}
	return string(bytes.TrimSpace(data))
}

func newBatchKey() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrUnblocksOff is wrapped by the errors of [Client.PendingUnblocks] and
// [Client.AckUnblocks] when the dashboard answers 404: remote unblock is
// not enabled there (ENABLE_UNBLOCKS), or the URL is not a dashboard.
var ErrUnblocksOff = errors.New("dashboardapi: remote unblock is not enabled on the dashboard")

// StatusError is an answer from the dashboard that is not a success.
type StatusError struct {
	// StatusCode is the HTTP status, such as 401.
	StatusCode int
	// Message is the dashboard's error text.
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// maxUnblocksAnswer bounds the answer to an unblock call the Client reads.
const maxUnblocksAnswer = 8 << 20

// PendingUnblocks asks the dashboard for the pending unblock requests of
// the filter named hostname (GET /api/v1/unblocks?hostname=X), oldest
// first. Asking keeps them from expiring. A request stays pending, and is
// returned again, until [Client.AckUnblocks] reports it. Each call is
// bounded by [ClientConfig.Timeout]. A 404 answer wraps [ErrUnblocksOff];
// other failures are a [*StatusError] or the transport's error.
func (c *Client) PendingUnblocks(ctx context.Context, hostname string) ([]UnblockRequest, error) {
	if hostname == "" {
		return nil, errors.New("dashboardapi: pending unblocks: hostname is empty")
	}
	var resp UnblocksResponse
	err := c.call(ctx, http.MethodGet, c.unblocks+"?"+url.Values{"hostname": {hostname}}.Encode(), nil, &resp)
	if err != nil {
		return nil, unblockError("pending unblocks", err)
	}
	return resp.Requests, nil
}

// AckUnblocks reports a filter's results (POST /api/v1/unblocks/ack), in
// batches of up to 1000. Acknowledging a request twice is harmless: the
// dashboard keeps the first result. Requests the dashboard does not know,
// such as those made before it restarted, are logged at INFO and are not
// an error. Errors are as for [Client.PendingUnblocks]; after one, the
// caller should send the same acknowledgements again later.
func (c *Client) AckUnblocks(ctx context.Context, acks []UnblockAck) error {
	for len(acks) > 0 {
		n := min(len(acks), maxAcks)
		body, err := json.Marshal(AckUnblocks{Acks: acks[:n]})
		if err != nil {
			return fmt.Errorf("dashboardapi: ack unblocks: %w", err)
		}
		var resp AckUnblocksResponse
		if err := c.call(ctx, http.MethodPost, c.unblocks+"/ack", body, &resp); err != nil {
			return unblockError("ack unblocks", err)
		}
		for _, r := range resp.Results {
			if r.Result == AckUnknown {
				c.log.Info("dashboard does not know this unblock request; it may have restarted", logKeyID, r.ID)
			}
		}
		acks = acks[n:]
	}
	return nil
}

// unblockError prefixes err with the package and op, but for
// ErrUnblocksOff, which says it all.
func unblockError(op string, err error) error {
	if errors.Is(err, ErrUnblocksOff) {
		return err
	}
	return fmt.Errorf("dashboardapi: %s: %w", op, err)
}

// call makes one API call with the key, and decodes a 200 answer into out.
func (c *Client) call(ctx context.Context, method, u string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(APIKeyHeader, c.cfg.APIKey)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxUnblocksAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		se := &StatusError{StatusCode: resp.StatusCode, Message: errorText(data)}
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w: %w", ErrUnblocksOff, se)
		}
		return se
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	return nil
}
