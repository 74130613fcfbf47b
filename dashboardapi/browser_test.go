package dashboardapi

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

var screenshotDir = flag.String("screenshots", "", "directory the browser test saves UI screenshots in (such as ../docs)")

// chromium finds the browser. Under CI=true a missing browser fails the
// test: CI must install it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found; CI must install it (apt-get install chromium)")
	}
	t.Skip("chromium not found; install it (apt-get install chromium) to run the browser test")
	return ""
}

// browser starts a headless Chromium and returns its context. Uncaught
// exceptions in the page are collected in *errs.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	var mu sync.Mutex
	var errs []string
	// Start the browser now. It lives as long as the context of this first
	// call, so that context is not one with a timeout.
	require.NoError(t, chromedp.Do(ctx))
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			d := e.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			mu.Lock()
			errs = append(errs, text)
			mu.Unlock()
		}
	}))
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// runIn runs steps within a bound.
func runIn(t *testing.T, ctx context.Context, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	require.NoError(t, chromedp.Do(tctx, steps...))
}

// get runs one action that returns a value, within 5s.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	require.NoError(t, err)
	return v
}

const xssName = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">.evil.example`

func TestBrowserUI(t *testing.T) {
	ctx, pageErrors := browser(t)
	s, hs := startServer(t, ServerConfig{})

	var seedEvs []events.Event
	for i := range 12 {
		action := events.Allowed
		if i%3 == 0 {
			action = events.Blocked
		}
		e := ev(i, action, events.HTTPS)
		e.Time = time.Now().Add(-time.Duration(12-i) * time.Minute)
		if action == events.Blocked {
			e.Name = "tracker.example"
		}
		seedEvs = append(seedEvs, e)
	}
	x := ev(99, events.Blocked, events.HTTPS)
	x.Time, x.Name, x.Detail, x.Host = time.Now(), xssName, `<b>bold</b>`, `<i>web</i>`
	seedEvs = append(seedEvs, x)
	post(t, hs.URL, seedEvs...)
	const xssID = 13

	runIn(t, ctx, 30*time.Second,
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible(`#rows tr[data-id="13"]`),
		chromedp.WaitVisible(`#status[data-state="live"]`),
	)

	t.Run("network text is shown as text", func(t *testing.T) {
		name := get(t, ctx, chromedp.TextContent(fmt.Sprintf(`#rows tr[data-id="%d"] td.name`, xssID)))
		host := get(t, ctx, chromedp.TextContent(fmt.Sprintf(`#rows tr[data-id="%d"] td.host`, xssID)))
		xss := get(t, ctx, chromedp.Evaluate[string](`typeof window.__xss`))
		injected := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#rows script, #rows img, #rows b, #rows i, #top-blocked script, #top-blocked img, #filter-host i').length`))
		assert.Equal(t, xssName, name)
		assert.Equal(t, `<i>web</i>`, host)
		assert.Equal(t, "undefined", xss, "no script from the data ran")
		assert.Zero(t, injected, "no element made from the data")
	})

	t.Run("counters and top blocked", func(t *testing.T) {
		total := get(t, ctx, chromedp.TextContent(`#count-total`))
		blocked := get(t, ctx, chromedp.TextContent(`#count-blocked`))
		top := get(t, ctx, chromedp.TextContent(`#top-blocked li:first-child .name`))
		bars := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#chart rect.blocked').length`))
		assert.Equal(t, "13", total)
		assert.Equal(t, "5", blocked)
		assert.Equal(t, "tracker.example", top)
		assert.Positive(t, bars)
	})

	t.Run("an event ingested after load appears within a second", func(t *testing.T) {
		e := ev(100, events.Blocked, events.DNS)
		e.Time, e.Name = time.Now(), "live.example"
		start := time.Now()
		post(t, hs.URL, e)
		runIn(t, ctx, time.Second, chromedp.WaitVisible(`#rows tr[data-id="14"]`))
		t.Logf("appeared after %v", time.Since(start))
		first := get(t, ctx, chromedp.TextContent(`#rows tr:first-child td.name`))
		total := get(t, ctx, chromedp.TextContent(`#count-total`))
		assert.Equal(t, "live.example", first, "newest on top")
		assert.Equal(t, "14", total)
	})

	t.Run("no unblock buttons when unblocks are off", func(t *testing.T) {
		buttons := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('.unblock-btn').length`))
		hidden := get(t, ctx, chromedp.Evaluate[bool](`document.querySelector('th.unblock-col').hidden`))
		assert.Zero(t, buttons)
		assert.True(t, hidden)
	})

	if *screenshotDir != "" {
		png := get(t, ctx, chromedp.FullScreenshot(100)) // quality 100 makes a PNG
		require.NoError(t, os.WriteFile(filepath.Join(*screenshotDir, "dashboard.png"), png, 0o644))
	}

	t.Run("filters", func(t *testing.T) {
		runIn(t, ctx, 5*time.Second,
			chromedp.SetValue(`#filter-action`, "blocked"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('filter-action').dispatchEvent(new Event('change'))`),
		)
		verdicts := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#rows td.verdict-cell')].map(td => td.textContent)`))
		assert.Len(t, verdicts, 6)
		for _, v := range verdicts {
			assert.Equal(t, "blocked", v)
		}

		runIn(t, ctx, 5*time.Second,
			chromedp.SendKeys(`#search`, "TRACKER"),
			chromedp.Poll[chromedp.Void](`document.querySelectorAll('#rows tr').length === 4`, chromedp.WithPollingTimeout(3*time.Second)),
		)
		// A live event that does not match stays out of the table.
		e := ev(101, events.Allowed, events.DNS)
		e.Time = time.Now()
		post(t, hs.URL, e)
		e.Action, e.Name = events.Blocked, "tracker.example"
		post(t, hs.URL, e)
		runIn(t, ctx, 5*time.Second, chromedp.WaitVisible(`#rows tr[data-id="16"]`))
		n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#rows tr').length`))
		shown := get(t, ctx, chromedp.TextContent(`#shown`))
		assert.Equal(t, 5, n)
		assert.Equal(t, "5 of 16 events", shown)
	})

	t.Run("a filter's suggested policy", func(t *testing.T) {
		hidden := get(t, ctx, chromedp.Evaluate[bool](`document.getElementById('suggest').hidden`))
		assert.True(t, hidden, "no link while every filter is shown")
		runIn(t, ctx, 5*time.Second,
			chromedp.SetValue(`#filter-host`, "web-1"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('filter-host').dispatchEvent(new Event('change'))`),
		)
		hidden = get(t, ctx, chromedp.Evaluate[bool](`document.getElementById('suggest').hidden`))
		href := get(t, ctx, chromedp.Evaluate[string](`document.getElementById('suggest').href`))
		assert.False(t, hidden)
		assert.Equal(t, hs.URL+"/api/v1/suggest?hostname=web-1", href)
		// The page fetches what the link downloads, as the browser would.
		body := get(t, ctx, chromedp.Evaluate[string](`fetch(document.getElementById('suggest').href).then(r => r.text())`,
			chromedp.EvalAwaitPromise))
		assert.Contains(t, body, "tracker.example")
		assert.Contains(t, body, "allowlist:")
		runIn(t, ctx, 5*time.Second,
			chromedp.SetValue(`#filter-host`, ""),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('filter-host').dispatchEvent(new Event('change'))`),
		)
	})

	t.Run("clear empties the page", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, hs.URL+"/api/v1/logs", nil)
		req.Header.Set(CSRFHeader, noneToken(s))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		runIn(t, ctx, 5*time.Second, chromedp.Poll[chromedp.Void](`document.querySelectorAll('#rows tr').length === 0 && document.getElementById('count-total').textContent === '0'`, chromedp.WithPollingTimeout(3*time.Second)))
	})

	assert.Empty(t, pageErrors(), "no script errors in the page")
	_ = s
}

// TestBrowserUnblock walks remote unblock through the UI: a click makes the
// request, a filter (here the test, with the API key) acknowledges it, and
// the row shows the result.
func TestBrowserUnblock(t *testing.T) {
	ctx, pageErrors := browser(t)
	_, hs := startServer(t, ServerConfig{Unblocks: NewUnblocks(UnblocksConfig{})})
	byName, allowed, byIP := ev(1, events.Blocked, events.HTTPS), ev(2, events.Allowed, events.HTTPS), ev(3, events.Blocked, events.Kernel)
	byName.Name, byIP.Name = "Blocked.Example", ""
	post(t, hs.URL, byName, allowed, byIP)
	runIn(t, ctx, 30*time.Second,
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible(`#rows tr[data-id="3"]`),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
	)
	buttons := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.id + ':' + tr.querySelectorAll('.unblock-btn').length)`))
	hidden := get(t, ctx, chromedp.Evaluate[bool](`document.querySelector('th.unblock-col').hidden`))
	assert.Equal(t, []string{"3:1", "2:0", "1:1"}, buttons, "a button on the blocked rows only")
	assert.False(t, hidden)

	// pendingOne waits for the one pending request a filter would fetch.
	pendingOne := func(t *testing.T) UnblockRequest {
		t.Helper()
		var got []UnblockRequest
		require.Eventually(t, func() bool {
			got = fetchOver(t, hs.URL, "web-1")
			return len(got) == 1
		}, 5*time.Second, 20*time.Millisecond, "the click makes one request")
		return got[0]
	}

	t.Run("applied", func(t *testing.T) {
		runIn(t, ctx, 5*time.Second,
			chromedp.Click(`#rows tr[data-id="1"] .unblock-btn`),
			chromedp.WaitVisible(`#rows tr[data-id="1"] .unblock-state[data-state="pending"]`),
		)
		req := pendingOne(t)
		assert.Equal(t, "blocked.example", req.Target)
		assert.Equal(t, UnblockDomain, req.Kind)

		ackOver(t, hs.URL, UnblockAck{ID: req.ID, Applied: true})
		runIn(t, ctx, 5*time.Second, chromedp.WaitVisible(`#rows tr[data-id="1"] .unblock-state[data-state="applied"]`))
		text := get(t, ctx, chromedp.TextContent(`#rows tr[data-id="1"] td.unblock`))
		n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#rows tr[data-id="1"] .unblock-btn').length`))
		assert.Equal(t, "applied", text)
		assert.Zero(t, n, "no button once applied")
	})

	t.Run("failed, with the reason as text", func(t *testing.T) {
		runIn(t, ctx, 5*time.Second,
			chromedp.Click(`#rows tr[data-id="3"] .unblock-btn`),
			chromedp.WaitVisible(`#rows tr[data-id="3"] .unblock-state[data-state="pending"]`),
		)
		req := pendingOne(t)
		assert.Equal(t, "198.51.100.14/32", req.Target, "the destination address of a row without a name")

		ackOver(t, hs.URL, UnblockAck{ID: req.ID, Error: `<img src=x onerror="window.__xss=3">no file to edit`})
		runIn(t, ctx, 5*time.Second, chromedp.WaitVisible(`#rows tr[data-id="3"] .unblock-state[data-state="failed"]`))
		text := get(t, ctx, chromedp.TextContent(`#rows tr[data-id="3"] .unblock-state`))
		again := get(t, ctx, chromedp.TextContent(`#rows tr[data-id="3"] .unblock-btn`))
		injected := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#rows img').length`))
		assert.Equal(t, `failed: <img src=x onerror="window.__xss=3">no file to edit`, text)
		assert.Equal(t, "Unblock again", again)
		assert.Zero(t, injected)
	})

	t.Run("state survives redrawing the table", func(t *testing.T) {
		runIn(t, ctx, 5*time.Second,
			chromedp.SetValue(`#filter-action`, "blocked"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('filter-action').dispatchEvent(new Event('change'))`),
			chromedp.WaitVisible(`#rows tr[data-id="1"] .unblock-state[data-state="applied"]`),
			chromedp.WaitVisible(`#rows tr[data-id="3"] .unblock-state[data-state="failed"]`),
		)
	})

	t.Run("state after a reload", func(t *testing.T) {
		runIn(t, ctx, 10*time.Second,
			chromedp.Reload(),
			chromedp.WaitVisible(`#rows tr[data-id="1"] .unblock-state[data-state="applied"]`),
			chromedp.WaitVisible(`#rows tr[data-id="3"] .unblock-state[data-state="failed"]`),
		)
	})
	assert.Empty(t, pageErrors())
}

// fetchOver asks for a filter's pending unblocks as the filter does.
func fetchOver(t *testing.T, base, hostname string) []UnblockRequest {
	t.Helper()
	c := newTestClient(t, ClientConfig{URL: base})
	got, err := c.PendingUnblocks(context.Background(), hostname)
	require.NoError(t, err)
	return got
}

// ackOver acknowledges unblocks as a filter does.
func ackOver(t *testing.T, base string, acks ...UnblockAck) {
	t.Helper()
	c := newTestClient(t, ClientConfig{URL: base})
	require.NoError(t, c.AckUnblocks(context.Background(), acks))
}

// signInPage signs in through the login form, as a person does.
func signInPage(t *testing.T, ctx context.Context, base, user, password string) {
	t.Helper()
	runIn(t, ctx, 30*time.Second,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#login`),
		chromedp.SendKeys(`#user`, user),
		chromedp.SendKeys(`#password`, password),
		chromedp.Click(`#sign-in`),
		chromedp.WaitVisible(`#status[data-state="live"]`),
	)
}

// TestBrowserSignIn walks the people's side in a real browser: sign in,
// see a live event, ask for an unblock as an operator, sign out; a viewer
// sees no unblock or clear buttons and is refused when the page asks all
// the same; and the page's policy stops an injected inline script.
func TestBrowserSignIn(t *testing.T) {
	ctx, pageErrors := browser(t)
	hs, _ := localServer(t, nil)
	postAs := func(key string, evs ...events.Event) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, hs.URL+"/api/v1/logs", strings.NewReader(ingestBody(t, evs...)))
		require.NoError(t, err)
		req.Header.Set(APIKeyHeader, key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	postAs(anyFilterKey, ev(1, events.Allowed, events.HTTPS))

	t.Run("a wrong password shows the form again", func(t *testing.T) {
		runIn(t, ctx, 30*time.Second,
			chromedp.Navigate(hs.URL+"/"),
			chromedp.WaitVisible(`#login`),
			chromedp.SendKeys(`#user`, "alice"),
			chromedp.SendKeys(`#password`, "not her password"),
			chromedp.Click(`#sign-in`),
			chromedp.WaitVisible(`#login-error`),
		)
		msg := get(t, ctx, chromedp.TextContent(`#login-error`))
		assert.Equal(t, "Wrong user name or password.", msg)
	})

	t.Run("operator", func(t *testing.T) {
		signInPage(t, ctx, hs.URL, "alice", alicePassword)
		who := get(t, ctx, chromedp.TextContent(`#user`))
		assert.Equal(t, "alice (operator)", who)

		blocked := ev(2, events.Blocked, events.HTTPS)
		blocked.Time, blocked.Name = time.Now(), "wanted.example"
		postAs(web1FilterKey, blocked)
		runIn(t, ctx, 5*time.Second,
			chromedp.WaitVisible(`#rows tr[data-id="2"]`),
			chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
			chromedp.Click(`#rows tr[data-id="2"] .unblock-btn`),
			chromedp.WaitVisible(`#rows tr[data-id="2"] .unblock-state[data-state="pending"]`),
		)
		c := newTestClient(t, ClientConfig{URL: hs.URL, APIKey: web1FilterKey})
		reqs, err := c.PendingUnblocks(context.Background(), "web-1")
		require.NoError(t, err)
		require.Len(t, reqs, 1)
		assert.Equal(t, "wanted.example", reqs[0].Target)

		runIn(t, ctx, 10*time.Second,
			chromedp.Click(`#logout`),
			chromedp.WaitVisible(`#login`),
		)
		// The page is gone with the session: back to the form.
		runIn(t, ctx, 10*time.Second,
			chromedp.Navigate(hs.URL+"/"),
			chromedp.WaitVisible(`#login`),
		)
	})

	t.Run("viewer", func(t *testing.T) {
		signInPage(t, ctx, hs.URL, "victor", victorPass)
		runIn(t, ctx, 5*time.Second, chromedp.WaitVisible(`#rows tr[data-id="2"]`))
		who := get(t, ctx, chromedp.TextContent(`#user`))
		buttons := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('.unblock-btn').length`))
		clearHidden := get(t, ctx, chromedp.Evaluate[bool](`document.getElementById('clear').hidden`))
		assert.Equal(t, "victor (viewer)", who)
		assert.Zero(t, buttons, "no unblock buttons for a viewer")
		assert.True(t, clearHidden, "no clear button for a viewer")

		// Asking all the same, with the page's own token, is refused.
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		status, err := chromedp.Run(tctx, chromedp.Evaluate[int](`(async () => {
			const info = await fetch('api/v1/info').then((r) => r.json());
			const r = await fetch('api/v1/unblocks', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-Csrf-Token': info.csrf_token},
				body: JSON.stringify({hostname: 'web-1', target: 'viewer.example'})});
			return r.status;
		})()`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, status)
	})

	t.Run("an injected inline script does not run", func(t *testing.T) {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		directive, err := chromedp.Run(tctx, chromedp.Evaluate[string](`new Promise((resolve) => {
			document.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective), {once: true});
			const s = document.createElement('script');
			s.textContent = 'window.__inline = 1';
			document.body.append(s);
		})`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		ran := get(t, ctx, chromedp.Evaluate[string](`typeof window.__inline`))
		assert.Equal(t, "script-src-elem", directive)
		assert.Equal(t, "undefined", ran)
	})
	assert.Empty(t, pageErrors(), "no script errors in the page")
}

// TestBrowserObserved walks the Observed view in a real browser: a
// filter's destinations by registrable domain, would-block first; Allow
// asks for a remote unblock as the signed-in operator, recorded in the
// audit; a viewer sees no Allow buttons. The live table sets would-block
// apart from blocked.
func TestBrowserObserved(t *testing.T) {
	ctx, pageErrors := browser(t)
	hs, _ := localServer(t, nil)
	postAs := func(evs ...events.Event) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, hs.URL+"/api/v1/logs", strings.NewReader(ingestBody(t, evs...)))
		require.NoError(t, err)
		req.Header.Set(APIKeyHeader, anyFilterKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	evs := observedEvents(time.Now().Add(-time.Minute))
	postAs(evs...)
	last := len(evs)

	// chooseAndOpen chooses web-1 and opens its Observed view.
	chooseAndOpen := func(t *testing.T) {
		t.Helper()
		runIn(t, ctx, 10*time.Second,
			chromedp.WaitVisible(fmt.Sprintf(`#rows tr[data-id="%d"]`, last)),
			chromedp.SetValue(`#filter-host`, "web-1"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('filter-host').dispatchEvent(new Event('change'))`),
			chromedp.Click(`#show-observed`),
			chromedp.WaitVisible(`#observed .obs-group`),
		)
	}
	groups := func(t *testing.T) []string {
		t.Helper()
		return get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#observed .obs-group')].map((s) => s.dataset.domain + ':' + s.dataset.verdict)`))
	}
	want := []string{"example.com:wouldblock", "example.net:wouldblock", "example.org:wouldblock",
		"tracker.example:blocked", ":blocked", "github.com:allowed"}

	t.Run("operator", func(t *testing.T) {
		signInPage(t, ctx, hs.URL, "alice", alicePassword)
		runIn(t, ctx, 10*time.Second, chromedp.WaitVisible(fmt.Sprintf(`#rows tr[data-id="%d"]`, last)))

		// The live table: a would-block badge is drawn unlike a blocked one.
		styles := get(t, ctx, chromedp.Evaluate[[]string](`['blocked', 'wouldblock', 'allowed'].map((a) => {
			const s = getComputedStyle(document.querySelector('#rows tr.action-' + a + ' .verdict'));
			return s.backgroundColor + ' ' + s.borderStyle + ' ' + s.color;
		})`))
		assert.NotEqual(t, styles[0], styles[1], "would-block apart from blocked")
		assert.NotEqual(t, styles[2], styles[1], "would-block apart from allowed")
		counted := get(t, ctx, chromedp.TextContent(`#count-wouldblock`))
		assert.Equal(t, "5", counted)
		liveButtons := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#rows tr.action-wouldblock .unblock-btn').length`))
		assert.Equal(t, 5, liveButtons, "would-block rows can be unblocked as blocked ones")
		// The chart draws them apart too, and the top list counts them.
		runIn(t, ctx, 5*time.Second, chromedp.WaitReady(`#chart rect.wouldblock`))
		wouldFill := get(t, ctx, chromedp.Evaluate[[]string](`['wouldblock', 'blocked'].map((c) => getComputedStyle(document.querySelector('#chart rect.' + c)).fill)`))
		assert.NotEqual(t, wouldFill[1], wouldFill[0], "would-block bars apart from blocked ones")
		top := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#top-blocked li .name')].map((e) => e.textContent)`))
		assert.Contains(t, top, "api.example.com", "a would-block name is among the top refused")

		hidden := get(t, ctx, chromedp.Evaluate[bool](`document.getElementById('show-observed').hidden`))
		assert.True(t, hidden, "no Observed view while every filter is shown")
		chooseAndOpen(t)
		pressed := get(t, ctx, chromedp.Evaluate[string](`document.getElementById('show-observed').getAttribute('aria-pressed')`))
		tableHidden := get(t, ctx, chromedp.Evaluate[bool](`document.getElementById('events-view').hidden`))
		title := get(t, ctx, chromedp.TextContent(`#observed-title`))
		assert.Equal(t, "true", pressed)
		assert.True(t, tableHidden, "the view takes the table's place")
		assert.Equal(t, "Observed destinations of web-1", title)
		assert.Equal(t, want, groups(t), "would-block first, then blocked, then allowed")

		rows := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#observed .obs-group[data-domain="example.com"] tbody tr')].map((tr) =>
			[0, 1, 2, 3, 4, 5, 8].map((i) => tr.cells[i].textContent).join('|'))`))
		assert.Equal(t, []string{
			"api.example.com|tcp/443|would-block|2|0|2|*.example.com",
			"cdn.example.com|tcp/443|would-block|1|0|1|*.example.com",
			"www.example.com|tcp/443|allowed|1|0|0|*.example.com",
		}, rows)
		addrGroup := get(t, ctx, chromedp.TextContent(`#observed .obs-group[data-domain=""] h3 .obs-domain`))
		assert.Equal(t, "Addresses without a name", addrGroup)
		buttons := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#observed tbody tr')].map((tr) =>
			tr.dataset.dest + ':' + [...tr.querySelectorAll('.unblock-btn')].map((b) => b.textContent).join())`))
		assert.Equal(t, []string{"api.example.com:Allow", "cdn.example.com:Allow", "www.example.com:",
			"db.example.net:Allow", "db.example.net:", "api.example.org:Allow", "ads.tracker.example:Allow",
			"203.0.113.9:Allow", "github.com:"}, buttons,
			"Allow on what was refused")

		runIn(t, ctx, 5*time.Second,
			chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
			chromedp.Click(`#observed tr[data-dest="api.example.com"] .unblock-btn`),
			chromedp.WaitVisible(`#observed tr[data-dest="api.example.com"] .unblock-state[data-state="pending"]`),
		)
		c := newTestClient(t, ClientConfig{URL: hs.URL, APIKey: anyFilterKey})
		reqs, err := c.PendingUnblocks(context.Background(), "web-1")
		require.NoError(t, err)
		require.Len(t, reqs, 1)
		assert.Equal(t, "api.example.com", reqs[0].Target)
		assert.Equal(t, UnblockDomain, reqs[0].Kind)
		audit := get(t, ctx, chromedp.Evaluate[[]string](`fetch('api/v1/unblocks/audit').then((r) => r.json()).then((b) =>
			b.records.map((r) => r.action + ' ' + r.hostname + ' ' + r.target + ' by ' + r.user + ': ' + r.result))`, chromedp.EvalAwaitPromise))
		assert.Equal(t, []string{"request web-1 api.example.com by alice: created"}, audit, "the audit names who asked")

		// A new event of the filter shows in the open view, and the request
		// keeps its state when the view is drawn again.
		late := evs[0]
		late.Time, late.Name = time.Now(), "late.example"
		postAs(late)
		runIn(t, ctx, 10*time.Second,
			chromedp.WaitVisible(`#observed .obs-group[data-domain="late.example"]`),
			chromedp.WaitVisible(`#observed tr[data-dest="api.example.com"] .unblock-state[data-state="pending"]`),
		)
		last++
		if *screenshotDir != "" {
			png := get(t, ctx, chromedp.FullScreenshot(100))
			require.NoError(t, os.WriteFile(filepath.Join(*screenshotDir, "observed.png"), png, 0o644))
		}

		runIn(t, ctx, 5*time.Second, chromedp.Click(`#show-observed`))
		shown := get(t, ctx, chromedp.Evaluate[[]bool](`[document.getElementById('observed').hidden, document.getElementById('events-view').hidden]`))
		assert.Equal(t, []bool{true, false}, shown, "closed: the table is back")
		runIn(t, ctx, 10*time.Second,
			chromedp.Click(`#logout`),
			chromedp.WaitVisible(`#login`),
		)
	})

	t.Run("viewer", func(t *testing.T) {
		signInPage(t, ctx, hs.URL, "victor", victorPass)
		chooseAndOpen(t)
		assert.Equal(t, slices.Concat(want[:3], []string{"late.example:wouldblock"}, want[3:]), groups(t))
		buttons := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#observed .unblock-btn, #observed th.unblock-col, #observed td.unblock').length`))
		n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#observed tbody tr').length`))
		assert.Zero(t, buttons, "no Allow for a viewer")
		assert.Equal(t, 10, n)
	})
	assert.Empty(t, pageErrors(), "no script errors in the page")
}
