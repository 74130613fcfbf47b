package gotify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/g0lab/g0efilter/events"
)

// Defaults of [Config].
const (
	DefaultBackoff    = 60 * time.Second
	DefaultPriority   = 5
	DefaultTimeout    = 5 * time.Second
	DefaultAttempts   = 3
	DefaultRetryDelay = time.Second
	DefaultQueueSize  = 64
)

// ErrConfig is wrapped by the errors of [New] for a Config it cannot use.
var ErrConfig = errors.New("gotify: invalid config")

// Config configures a [Notifier]. URL and Token are required; every other
// field works at its zero value.
type Config struct {
	// URL is the Gotify server's base URL (NOTIFICATION_HOST), such as
	// "https://gotify.example.com" or "http://10.0.0.5:8080/gotify".
	// Messages are posted to URL/message.
	URL string
	// Token is the Gotify application token (NOTIFICATION_KEY), sent in the
	// X-Gotify-Key header.
	Token string
	// Host names the filter in message titles. Empty means the event's Host.
	Host string
	// Backoff is how long after a message about a target further blocks of
	// that target are not notified (NOTIFICATION_BACKOFF_SECONDS). A target
	// is the event's Name or, without one, its destination address. It is
	// also how often a failing Gotify is logged. Zero means 60s; negative
	// means every blocked event is notified.
	Backoff time.Duration
	// Ignore lists names never notified (NOTIFICATION_IGNORE_DOMAINS):
	// "example.com" exactly, "*.example.com" for every name below
	// example.com (not example.com itself), or "*" for everything. Case and
	// a trailing dot do not matter; an address written out matches events
	// without a name that go to it. Empty entries are skipped.
	Ignore []string
	// Priority is the Gotify priority of each message. Zero means 5.
	Priority int
	// Client sends the requests. Nil means a client of its own.
	Client *http.Client
	// Timeout bounds each request, whatever the Client. Zero means 5s.
	Timeout time.Duration
	// Attempts is how many times a message is tried before it is given up
	// (counted in [Notifier.Failed]). Network errors and 5xx, 408 and 429
	// answers are retried; other answers, such as 401 for a bad token, are
	// not. Zero means 3.
	Attempts int
	// RetryDelay is the wait before the second attempt; it doubles before
	// each further one. Zero means 1s; negative means no wait.
	RetryDelay time.Duration
	// QueueSize is how many messages may wait for delivery; more are
	// dropped (counted in [Notifier.Dropped]). Zero means 64.
	QueueSize int
	// Logger receives delivery failures, at most once per Backoff. Nil
	// means discard.
	Logger *slog.Logger
	// Now tells the time for the backoff. Nil means time.Now.
	Now func() time.Time
}

// Notifier is an [events.Sink] that sends a Gotify message for blocked
// traffic. Emit decides at once (blocked, not ignored, not within the
// backoff of its target) and hands what is to be sent to a queue; one
// goroutine posts the messages. Make it with [New] and end it with
// [Notifier.Close].
type Notifier struct {
	cfg      Config
	endpoint string
	ignore   matcher
	logger   *slog.Logger
	queue    *events.Queue

	ctx    context.Context // ended by Close, to abort a request in flight
	cancel context.CancelFunc

	mu        sync.Mutex
	last      map[string]time.Time // target → when it was last notified
	lastSweep time.Time

	failed    atomic.Uint64
	abandoned atomic.Uint64 // reached the worker after Close gave up
	failing   bool          // worker only: the last message failed
	logged    time.Time     // worker only: when a failure was last logged
}

var _ events.Sink = (*Notifier)(nil)

// New checks cfg and starts a Notifier.
func New(cfg Config) (*Notifier, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: URL %q: want http:// or https:// and a host", ErrConfig, cfg.URL)
	}
	if cfg.Token == "" {
		return nil, fmt.Errorf("%w: Token is empty", ErrConfig)
	}
	ignore, err := compile(cfg.Ignore)
	if err != nil {
		return nil, err
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Priority == 0 {
		cfg.Priority = DefaultPriority
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	n := &Notifier{
		cfg:      cfg,
		endpoint: u.JoinPath("message").String(),
		ignore:   ignore,
		logger:   cfg.Logger,
		last:     map[string]time.Time{},
	}
	if n.logger == nil {
		n.logger = slog.New(slog.DiscardHandler)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.queue = events.NewQueue(events.SinkFunc(n.deliver), cfg.QueueSize)
	return n, nil
}

// Emit queues a message if e is a block worth telling about, and returns
// without waiting for it to be sent. A target is marked as notified when
// its message is queued, whether or not it is then delivered, so a failing
// Gotify is not asked again before the backoff ends.
func (n *Notifier) Emit(e events.Event) {
	if e.Action != events.Blocked {
		return
	}
	t := target(e)
	if n.ignore.match(t) || !n.due(t) {
		return
	}
	n.queue.Emit(e)
}

// due reports whether target may be notified now, and if so marks it.
func (n *Notifier) due(target string) bool {
	if n.cfg.Backoff < 0 {
		return true
	}
	now := n.cfg.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if last, ok := n.last[target]; ok && now.Sub(last) < n.cfg.Backoff {
		return false
	}
	n.last[target] = now
	if now.Sub(n.lastSweep) >= n.cfg.Backoff { // forget old targets, once a window
		for t, last := range n.last {
			if now.Sub(last) >= n.cfg.Backoff {
				delete(n.last, t)
			}
		}
		n.lastSweep = now
	}
	return true
}

// Dropped returns how many messages were not sent because the queue was
// full or closed, or because Close gave up before their turn.
func (n *Notifier) Dropped() uint64 { return n.queue.Dropped() + n.abandoned.Load() }

// Failed returns how many messages could not be delivered.
func (n *Notifier) Failed() uint64 { return n.failed.Load() }

// Close stops accepting events and sends the messages already queued. If
// ctx ends first, the request in flight is abandoned, the rest are dropped,
// and Close returns ctx.Err().
func (n *Notifier) Close(ctx context.Context) error {
	stop := context.AfterFunc(ctx, n.cancel)
	defer stop()
	err := n.queue.Close(ctx)
	n.cancel()
	return err
}

// target is what an event is about: its name, or without one the
// destination address.
func target(e events.Event) string {
	if e.Name != "" {
		return normalize(e.Name)
	}
	if e.Destination.Addr().IsValid() {
		return e.Destination.Addr().String()
	}
	return unknownTarget
}

const unknownTarget = "unknown destination"

// message is the body of Gotify's POST /message.
type message struct {
	Title    string `json:"title"`
	Message  string `json:"message"`
	Priority int    `json:"priority"`
}

// format returns the title and text of the message about e that host sent.
func format(host string, e events.Event) (title, text string) {
	if host == "" {
		host = e.Host
	}
	what := "blocked " + target(e)
	if e.Reason.Bypass() {
		what = "bypass attempt (" + string(e.Reason) + ")"
		if t := target(e); t != unknownTarget {
			what += " to " + t
		}
	}
	title = "g0efilter: " + what
	if host != "" {
		title = "g0efilter " + host + ": " + what
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s blocked", e.Component)
	if e.QType != "" {
		fmt.Fprintf(&b, " a %s query for", e.QType)
	}
	if e.Name != "" {
		fmt.Fprintf(&b, " %s", e.Name)
	}
	b.WriteString("\n")
	if e.Source.Addr().IsValid() || e.Destination.Addr().IsValid() {
		fmt.Fprintf(&b, "%s → %s", addrPort(e.Source), addrPort(e.Destination))
		if e.Protocol != "" {
			fmt.Fprintf(&b, " (%s)", e.Protocol)
		}
		b.WriteString("\n")
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", e.Reason)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, "detail: %s\n", e.Detail)
	}
	if !e.Time.IsZero() {
		fmt.Fprintf(&b, "time: %s\n", e.Time.UTC().Format(time.RFC3339))
	}
	return title, strings.TrimSuffix(b.String(), "\n")
}

func addrPort(ap netip.AddrPort) string {
	if !ap.Addr().IsValid() {
		return "?"
	}
	return ap.String()
}

// deliver sends the message about e, retrying, and reports the outcome. It
// runs in the queue's goroutine only.
func (n *Notifier) deliver(e events.Event) {
	if n.ctx.Err() != nil {
		n.abandoned.Add(1)
		return
	}
	title, text := format(n.cfg.Host, e)
	body, err := json.Marshal(message{Title: title, Message: text, Priority: n.cfg.Priority})
	if err != nil { // cannot happen: strings and an int
		n.failed.Add(1)
		return
	}
	delay := n.cfg.RetryDelay
	for attempt := 1; ; attempt++ {
		err = n.post(body)
		if err == nil || attempt == n.cfg.Attempts || !retryable(err) || !n.wait(delay) {
			break
		}
		delay *= 2
	}
	n.report(err)
}

// wait waits d, or less if Close gives up; it reports whether to go on.
func (n *Notifier) wait(d time.Duration) bool {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-n.ctx.Done():
		}
	}
	return n.ctx.Err() == nil
}

func (n *Notifier) report(err error) {
	if err == nil {
		if n.failing {
			n.logger.Info("gotify: delivering notifications again")
			n.failing = false
		}
		return
	}
	n.failed.Add(1)
	n.failing = true
	if n.ctx.Err() != nil {
		return // closing: the caller knows
	}
	every := n.cfg.Backoff
	if every < 0 {
		every = DefaultBackoff
	}
	now := n.cfg.Now()
	if !n.logged.IsZero() && now.Sub(n.logged) < every {
		return
	}
	n.logged = now
	n.logger.Warn("gotify: cannot deliver notification", "error", err, "failed", n.failed.Load())
}

// statusError is a non-2xx answer from Gotify.
type statusError struct {
	code int
	text string // Gotify's errorDescription, if it sent one
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("gotify: server answered %d %s", e.code, http.StatusText(e.code))
	if e.text != "" {
		s += ": " + e.text
	}
	return s
}

func retryable(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusRequestTimeout || se.code == http.StatusTooManyRequests
	}
	return true
}

func (n *Notifier) post(body []byte) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gotify-Key", n.cfg.Token)
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var gerr struct {
		Description string `json:"errorDescription"`
	}
	_ = json.Unmarshal(answer, &gerr) // best effort: the status says enough
	return &statusError{code: resp.StatusCode, text: gerr.Description}
}
