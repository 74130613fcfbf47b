// g0efilter dashboard. Everything that comes from the network is put in the
// page with textContent or as an attribute value, never parsed as HTML.
'use strict';
(function () {
  const MAX_EVENTS = 2000;   // events kept in the page
  const CHART_MINUTES = 30;
  const TOP_N = 8;
  const UNBLOCK_POLL_MS = 1500;
  const OBSERVED_REFRESH_MS = 4000; // at most one refresh of the Observed view in this time: each reads the store

  const state = {
    records: [],      // oldest first
    lastId: 0,
    paused: false,
    pending: [],      // records that arrived while paused
    hosts: new Set(),
    info: { unblocks: false, read_limit: 500 },
    source: null,
    chartQueued: false,
    unblocks: new Map(),     // filter + "\n" + target → its newest request
    unblockAlias: new Map(), // a row's key → the key of the request it made
    unblockPoll: null,
    observed: { open: false, host: '', timer: null },
  };

  const $ = (id) => document.getElementById(id);

  // operator reports whether the signed-in person may change things.
  const operator = () => state.info.role === 'operator';

  // canUnblock reports whether unblock (and Allow) buttons are shown.
  const canUnblock = () => state.info.unblocks && operator();

  // refused reports whether a verdict refused the traffic, or in audit
  // mode would have.
  const refused = (action) => action === 'blocked' || action === 'would-block';

  // api calls the dashboard's API. A request that changes something
  // carries the CSRF token; an answer saying the sign-in ended reloads the
  // page, which leads to the sign-in.
  async function api(path, opts) {
    opts = Object.assign({}, opts);
    if (opts.method && opts.method !== 'GET') {
      opts.headers = Object.assign({}, opts.headers, { 'X-Csrf-Token': state.info.csrf_token || '' });
    }
    const resp = await fetch(path, opts);
    if (resp.status === 401) window.location.reload();
    return resp;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // cls keeps only letters, for class names made from data.
  const cls = (s) => String(s || '').replace(/[^a-z]/g, '');

  function addr(ip, port) {
    if (!ip) return '';
    const a = ip.includes(':') ? '[' + ip + ']' : ip;
    return port ? a + ':' + port : ip;
  }

  function fmtTime(t) {
    const d = new Date(t);
    if (isNaN(d)) return String(t);
    return d.toLocaleString(undefined, { month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function filters() {
    return {
      text: $('search').value.trim().toLowerCase(),
      action: $('filter-action').value,
      component: $('filter-component').value,
      host: $('filter-host').value,
    };
  }

  function matches(r, f) {
    if (f.action && r.action !== f.action) return false;
    if (f.component && r.component !== f.component) return false;
    if (f.host && r.host !== f.host) return false;
    if (f.text) {
      const hay = [r.name, r.host, r.src_ip, r.dst_ip, r.reason, r.rule].map((s) => String(s || '').toLowerCase());
      if (!hay.some((s) => s.includes(f.text))) return false;
    }
    return true;
  }

  function row(r) {
    const tr = el('tr', 'action-' + cls(r.action));
    tr.dataset.id = String(r.id);
    const time = el('td', 'time', fmtTime(r.time));
    time.title = String(r.time);
    tr.append(time);
    tr.append(el('td', 'host', r.host || ''));
    tr.append(el('td', 'component', r.component));
    const v = el('td', 'verdict-cell');
    v.append(el('span', 'verdict ' + cls(r.action), r.action));
    tr.append(v);
    const name = el('td', 'name', r.name || '');
    if (r.qtype) name.title = 'DNS ' + r.qtype;
    tr.append(name);
    let flow = addr(r.src_ip, r.src_port);
    const dst = addr(r.dst_ip, r.dst_port);
    if (dst) flow = (flow ? flow + ' → ' : '→ ') + dst;
    if (r.protocol) flow += ' (' + r.protocol + ')';
    tr.append(el('td', 'flow', flow));
    const reason = el('td', 'reason', r.reason || '');
    const more = [];
    if (r.rule) more.push('rule: ' + r.rule);
    if (r.detail) more.push(r.detail);
    if (more.length) reason.title = more.join('\n');
    tr.append(reason);
    if (canUnblock()) {
      const td = el('td', 'unblock');
      if (refused(r.action)) unblockCell(td, r.host, r.name || r.dst_ip, 'Unblock');
      tr.append(td);
    }
    return tr;
  }

  // unblockCell makes td the unblock cell of target on filter host, with a
  // button labelled label.
  function unblockCell(td, host, target, label) {
    if (!host || !target) return;
    td.dataset.host = host;
    td.dataset.target = target;
    td.dataset.key = unblockKey(host, target);
    td.dataset.label = label;
    fillUnblock(td);
  }

  // Remote unblock. Requests are kept by filter and target, so that every
  // row of the same blocked name shows the same request, and a row drawn
  // again (a filter change, say) shows it too.

  // normTarget is about what the dashboard makes of a target: names in
  // lower case without the trailing dot, an address as a /32 or /128.
  function normTarget(t) {
    let s = String(t).trim().toLowerCase();
    if (s.endsWith('.')) s = s.slice(0, -1);
    if (!s.includes('/') && (/^[0-9.]+$/.test(s) || s.includes(':'))) s += s.includes(':') ? '/128' : '/32';
    return s;
  }

  const unblockKey = (host, target) => host + '\n' + normTarget(target);

  function unblockFor(key) {
    return state.unblocks.get(state.unblockAlias.get(key) || key);
  }

  const STATE_TEXT = { pending: 'pending…', applied: 'applied', failed: 'failed', expired: 'expired' };

  // fillUnblock draws an unblock cell: the state of its latest request, and
  // a button unless one is pending or applied.
  function fillUnblock(td, problem) {
    const req = unblockFor(td.dataset.key);
    const parts = [];
    if (req) {
      let text = STATE_TEXT[req.state] || String(req.state);
      if (req.state === 'failed' && req.error) text += ': ' + req.error;
      const span = el('span', 'unblock-state', text);
      span.dataset.state = cls(req.state);
      span.title = req.target + ' on ' + req.hostname + ', asked ' + fmtTime(req.created) + ', ' + req.state + ' ' + fmtTime(req.updated);
      parts.push(span);
    }
    if (problem) {
      const span = el('span', 'unblock-state', 'not requested: ' + problem);
      span.dataset.state = 'failed';
      parts.push(span);
    }
    if (!req || req.state === 'failed' || req.state === 'expired') {
      const label = td.dataset.label || 'Unblock';
      const b = el('button', 'unblock-btn', req ? label + ' again' : label);
      b.type = 'button';
      b.addEventListener('click', () => requestUnblock(td, b));
      parts.push(b);
    }
    td.replaceChildren(...parts);
  }

  function refreshUnblocks(keys) {
    for (const td of document.querySelectorAll('td.unblock[data-key]')) {
      const k = td.dataset.key;
      if (k && (keys.has(k) || keys.has(state.unblockAlias.get(k)))) fillUnblock(td);
    }
  }

  // keep stores requests from the API and redraws their cells.
  function keep(reqs) {
    const keys = new Set();
    for (const req of reqs) {
      if (!req || typeof req.id !== 'string') continue;
      const k = req.hostname + '\n' + req.target;
      const old = state.unblocks.get(k);
      // The newest request for a target wins; an older one's update does not.
      if (old && old.id !== req.id && Date.parse(old.created) > Date.parse(req.created)) continue;
      state.unblocks.set(k, req);
      keys.add(k);
    }
    if (keys.size) refreshUnblocks(keys);
    pollUnblocks();
  }

  async function requestUnblock(td, button) {
    const host = td.dataset.host, target = td.dataset.target;
    if (!window.confirm('Ask filter ' + host + ' to allow ' + target + '?')) return;
    button.disabled = true;
    let problem;
    try {
      const resp = await api('api/v1/unblocks', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ hostname: host, target: target }),
      });
      const body = await resp.json().catch(() => ({}));
      if (resp.ok) {
        state.unblockAlias.set(td.dataset.key, body.hostname + '\n' + body.target);
        keep([body]);
        return;
      }
      problem = String(body.error || resp.status);
    } catch (e) {
      problem = String(e);
    }
    fillUnblock(td, problem);
  }

  // pollUnblocks asks for the state of the pending requests until none is.
  function pollUnblocks() {
    if (state.unblockPoll) return;
    const ids = [...state.unblocks.values()].filter((r) => r.state === 'pending').map((r) => r.id);
    if (!ids.length) return;
    state.unblockPoll = setTimeout(async () => {
      let reqs = [];
      try {
        const q = ids.map((id) => 'id=' + encodeURIComponent(id)).join('&');
        const body = await api('api/v1/unblocks/status?' + q).then((r) => r.json());
        reqs = body.requests || [];
      } catch (e) { /* try again at the next tick */ }
      state.unblockPoll = null;
      keep(reqs);
      pollUnblocks();
    }, UNBLOCK_POLL_MS);
  }

  // render rebuilds the table from the records that pass the filters.
  function render() {
    const f = filters();
    const tbody = $('rows');
    const frag = document.createDocumentFragment();
    let shown = 0;
    for (let i = state.records.length - 1; i >= 0; i--) {
      const r = state.records[i];
      if (matches(r, f)) {
        frag.append(row(r));
        shown++;
      }
    }
    tbody.replaceChildren(frag);
    showCount(shown);
  }

  function showCount(shown) {
    const total = state.records.length;
    $('shown').textContent = shown === total ? total + ' events' : shown + ' of ' + total + ' events';
    $('empty').hidden = total > 0;
  }

  function counters() {
    const c = { allowed: 0, blocked: 0, error: 0, 'would-block': 0 };
    for (const r of state.records) if (r.action in c) c[r.action]++;
    $('count-total').textContent = String(state.records.length);
    $('count-allowed').textContent = String(c.allowed);
    $('count-blocked').textContent = String(c.blocked);
    $('count-error').textContent = String(c.error);
    $('count-wouldblock').textContent = String(c['would-block']);
    $('count-hosts').textContent = String(state.hosts.size);
  }

  function topBlocked() {
    const counts = new Map();
    for (const r of state.records) {
      if (!refused(r.action)) continue;
      const k = r.name || r.dst_ip;
      if (k) counts.set(k, (counts.get(k) || 0) + 1);
    }
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, TOP_N);
    const ol = $('top-blocked');
    ol.replaceChildren(...top.map(([k, n]) => {
      const li = el('li');
      const name = el('span', 'name', k);
      name.title = 'Show only ' + k;
      name.addEventListener('click', () => { $('search').value = k; render(); });
      li.append(name, el('span', 'n', n));
      return li;
    }));
    $('top-empty').hidden = top.length > 0;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function chart() {
    state.chartQueued = false;
    const svg = $('chart');
    const now = Date.now();
    const minute = 60000;
    const end = Math.floor(now / minute) + 1;
    const start = end - CHART_MINUTES;
    const allowed = new Array(CHART_MINUTES).fill(0);
    const blocked = new Array(CHART_MINUTES).fill(0);
    const would = new Array(CHART_MINUTES).fill(0);
    for (const r of state.records) {
      const m = Math.floor(Date.parse(r.time) / minute) - start;
      if (m < 0 || m >= CHART_MINUTES) continue;
      if (r.action === 'allowed') allowed[m]++;
      else if (r.action === 'blocked') blocked[m]++;
      else if (r.action === 'would-block') would[m]++;
    }
    const peak = Math.max(1, ...allowed.map((a, i) => a + blocked[i] + would[i]));
    const W = 600, H = 120, bw = W / CHART_MINUTES;
    const parts = [];
    const rect = (x, y, w, h, c) => {
      const e = document.createElementNS(SVG, 'rect');
      e.setAttribute('x', x.toFixed(1)); e.setAttribute('y', y.toFixed(1));
      e.setAttribute('width', w.toFixed(1)); e.setAttribute('height', h.toFixed(1));
      e.setAttribute('class', c);
      return e;
    };
    for (let i = 0; i < CHART_MINUTES; i++) {
      const ha = (allowed[i] / peak) * (H - 4);
      const hb = (blocked[i] / peak) * (H - 4);
      const hw = (would[i] / peak) * (H - 4);
      const x = i * bw + 1;
      if (hb > 0) parts.push(rect(x, H - hb, bw - 2, hb, 'blocked'));
      if (hw > 0) parts.push(rect(x, H - hb - hw, bw - 2, hw, 'wouldblock'));
      if (ha > 0) parts.push(rect(x, H - hb - hw - ha, bw - 2, ha, 'allowed'));
      const title = document.createElementNS(SVG, 'title');
      title.textContent = allowed[i] + ' allowed, ' + blocked[i] + ' blocked' + (would[i] ? ', ' + would[i] + ' would block' : '');
      const hit = rect(i * bw, 0, bw, H, 'hit');
      hit.setAttribute('fill', 'transparent');
      hit.append(title);
      parts.push(hit);
    }
    const axis = document.createElementNS(SVG, 'line');
    axis.setAttribute('x1', '0'); axis.setAttribute('x2', String(W));
    axis.setAttribute('y1', String(H - 0.5)); axis.setAttribute('y2', String(H - 0.5));
    axis.setAttribute('class', 'axis');
    parts.push(axis);
    svg.replaceChildren(...parts);
  }

  function summaries() {
    counters();
    topBlocked();
    if (!state.chartQueued) {
      state.chartQueued = true;
      window.requestAnimationFrame(chart);
    }
  }

  function addHost(h) {
    if (!h || state.hosts.has(h)) return;
    state.hosts.add(h);
    const sel = $('filter-host');
    const opt = el('option', null, h);
    opt.value = h;
    sel.append(opt);
  }

  // add takes records in ID order; those already seen are skipped.
  function add(recs, live) {
    const f = filters();
    const tbody = $('rows');
    let added = 0;
    for (const r of recs) {
      if (typeof r.id !== 'number' || r.id <= state.lastId) continue;
      state.lastId = r.id;
      state.records.push(r);
      addHost(r.host);
      added++;
      if (r.host === state.observed.host) scheduleObserved();
      if (live && matches(r, f)) {
        const tr = row(r);
        tr.classList.add('new');
        tbody.prepend(tr);
      }
    }
    let dropped = state.records.length - MAX_EVENTS;
    if (dropped > 0) {
      const gone = state.records.splice(0, dropped);
      if (live) {
        const ids = new Set(gone.map((r) => String(r.id)));
        for (const tr of [...tbody.children].reverse()) {
          if (!ids.has(tr.dataset.id)) break;
          tr.remove();
        }
      }
    }
    if (!added) return;
    if (live) {
      showCount(tbody.children.length);
    } else {
      render();
    }
    summaries();
  }

  // clearUpTo forgets the records up to ID last (all of them without it).
  function clearUpTo(last) {
    const keep = (r) => typeof last === 'number' && r.id > last;
    state.records = state.records.filter(keep);
    state.pending = state.pending.filter(keep);
    render();
    summaries();
    scheduleObserved();
  }

  // The Observed view: what the chosen filter's workload reached or tried
  // to, by registrable domain, would-block first, as the dashboard's
  // events show it (GET api/v1/observed), with an Allow button that asks
  // for a remote unblock as the table's Unblock does.

  function setObservedOpen(open) {
    state.observed.open = open;
    $('show-observed').setAttribute('aria-pressed', String(open));
    $('observed').hidden = !open;
    $('events-view').hidden = open;
    if (open) loadObserved();
  }

  // scheduleObserved refreshes an open view soon, once however many events
  // arrive meanwhile.
  function scheduleObserved() {
    if (!state.observed.open || state.observed.timer) return;
    state.observed.timer = setTimeout(() => {
      state.observed.timer = null;
      loadObserved();
    }, OBSERVED_REFRESH_MS);
  }

  async function loadObserved() {
    const host = $('filter-host').value;
    if (!state.observed.open || !host) return;
    state.observed.host = host;
    $('observed-title').textContent = 'Observed destinations of ' + host;
    let body;
    try {
      const resp = await api('api/v1/observed?hostname=' + encodeURIComponent(host));
      body = await resp.json();
      if (!resp.ok) throw new Error(body.error || String(resp.status));
    } catch (e) {
      $('observed-summary').textContent = 'Cannot read what was observed: ' + String(e.message || e);
      return;
    }
    if (host !== $('filter-host').value) return; // another filter was chosen meanwhile
    renderObserved(host, body);
  }

  function renderObserved(host, body) {
    const groups = Array.isArray(body.groups) ? body.groups : [];
    let n = 0;
    for (const g of groups) n += (g.destinations || []).length;
    const parts = [n + (n === 1 ? ' destination' : ' destinations') + ' from ' + (body.events || 0) + ' events'];
    if (body.skipped) parts.push(body.skipped + ' no reason to allow anything (denied, malformed, attempts to get around the filter)');
    if (body.overflow) parts.push(body.overflow + ' about more destinations than are kept, left out');
    if (body.partial) parts.push('the oldest events held only');
    $('observed-summary').textContent = parts.join('; ') + '.';
    $('observed-empty').hidden = groups.length > 0;
    $('observed-groups').replaceChildren(...groups.map((g) => observedGroup(host, g)));
  }

  function observedGroup(host, g) {
    const sec = el('section', 'obs-group');
    const domain = g.domain || '';
    sec.dataset.domain = domain;
    sec.dataset.verdict = cls(g.verdict);
    const title = domain || 'Addresses without a name';
    const h = el('h3');
    const counts = [g.count + ' seen'];
    if (g.blocked) counts.push(g.blocked + ' blocked');
    if (g.would_block) counts.push(g.would_block + ' would block');
    h.append(el('span', 'verdict ' + cls(g.verdict), g.verdict), el('span', domain ? 'obs-domain' : 'obs-domain unnamed', title),
      el('span', 'muted obs-counts', counts.join(', ')));
    const table = el('table', 'obs');
    table.setAttribute('aria-label', 'Destinations of ' + title);
    const head = el('tr');
    for (const [text, c] of [['Destination'], ['Port'], ['Verdict'], ['Seen', 'num'], ['Blocked', 'num'],
      ['Would block', 'num'], ['First seen'], ['Last seen'], ['Suggested entry']]) {
      const th = el('th', c, text);
      th.scope = 'col';
      head.append(th);
    }
    if (canUnblock()) {
      const th = el('th', 'unblock-col', 'Allow');
      th.scope = 'col';
      head.append(th);
    }
    const thead = el('thead');
    thead.append(head);
    const tbody = el('tbody');
    for (const d of g.destinations || []) tbody.append(observedRow(host, d));
    table.append(thead, tbody);
    const wrap = el('div', 'table-wrap');
    wrap.append(table);
    sec.append(h, wrap);
    return sec;
  }

  function observedRow(host, d) {
    const tr = el('tr', 'action-' + cls(d.verdict));
    tr.dataset.dest = d.name || d.addr || '';
    const what = el('td', 'name', d.name || d.addr || '');
    if (d.name && d.addr) what.title = 'at ' + d.addr;
    tr.append(what);
    const port = el('td', 'port', d.port ? (d.proto ? d.proto + '/' : '') + d.port : 'DNS');
    if (!d.port) port.title = 'asked for in DNS';
    tr.append(port);
    const v = el('td', 'verdict-cell');
    v.append(el('span', 'verdict ' + cls(d.verdict), d.verdict));
    tr.append(v);
    tr.append(el('td', 'num seen', d.count));
    tr.append(el('td', 'num blocked', d.blocked));
    tr.append(el('td', 'num wouldblock', d.would_block));
    for (const t of [d.first, d.last]) {
      const td = el('td', 'time', fmtTime(t));
      td.title = String(t);
      tr.append(td);
    }
    const entry = el('td', 'entry', d.entry || '');
    entry.title = 'the entry of the suggested policy.yaml that allows it';
    tr.append(entry);
    if (canUnblock()) {
      const td = el('td', 'unblock');
      if (refused(d.verdict) && d.target) unblockCell(td, host, d.target, 'Allow');
      else if (refused(d.verdict)) td.title = 'Add ' + (d.entry || 'its entry') + ' to the policy file';
      tr.append(td);
    }
    return tr;
  }

  function setStatus(s, text) {
    const e = $('status');
    e.dataset.state = s;
    e.textContent = text;
  }

  function onRecord(data) {
    let r;
    try { r = JSON.parse(data); } catch (e) { return; }
    if (state.paused) {
      if (typeof r.id === 'number' && r.id > state.lastId) state.pending.push(r);
      setStatus('paused', 'paused, ' + state.pending.length + ' new');
      return;
    }
    add([r], true);
  }

  function connect() {
    const es = new EventSource('api/v1/events?last_event_id=' + encodeURIComponent(String(state.lastId)));
    state.source = es;
    es.onopen = () => { if (!state.paused) setStatus('live', 'live'); };
    es.onerror = () => {
      setStatus('reconnecting', 'reconnecting…');
      // A stream refused (the sign-in ended) is not retried by the browser.
      if (es.readyState === EventSource.CLOSED) api('api/v1/info');
    };
    es.onmessage = (m) => onRecord(m.data);
    es.addEventListener('clear', (m) => {
      let last;
      try { last = JSON.parse(m.data).last_id; } catch (e) { /* clear all */ }
      clearUpTo(last);
    });
    es.addEventListener('reset', () => { state.lastId = 0; clearUpTo(); });
  }

  async function load() {
    try {
      const resp = await api('api/v1/info');
      if (resp.ok) state.info = await resp.json();
    } catch (e) { /* keep the defaults */ }
    showUser();
    document.querySelectorAll('.unblock-col').forEach((th) => { th.hidden = !(state.info.unblocks && operator()); });
    if (state.info.unblocks) {
      try {
        const body = await api('api/v1/unblocks/status').then((r) => r.json());
        keep(body.requests || []);
      } catch (e) { /* buttons still work */ }
    }
    try {
      const resp = await api('api/v1/logs?limit=' + encodeURIComponent(String(state.info.read_limit || 500)));
      const body = await resp.json();
      add(body.events || [], false);
      state.lastId = Math.max(state.lastId, body.last_id || 0);
    } catch (e) {
      setStatus('reconnecting', 'cannot read events');
    }
    render();
    summaries();
    connect();
  }

  // showUser says who is signed in, with what role, and offers to sign out.
  function showUser() {
    const i = state.info;
    $('user').textContent = i.auth === 'none' ? 'no sign-in (AUTH=none), ' + (i.role || '') : (i.user || '') + ' (' + (i.role || '') + ')';
    $('user').dataset.role = i.role || '';
    $('logout').hidden = !i.logout;
    $('clear').hidden = !operator();
  }

  function init() {
    let t = null;
    $('search').addEventListener('input', () => { clearTimeout(t); t = setTimeout(render, 120); });
    for (const id of ['filter-action', 'filter-component', 'filter-host']) $(id).addEventListener('change', render);
    // One filter chosen: offer the policy suggested from its events, and
    // the view of what its workload reached.
    $('filter-host').addEventListener('change', () => {
      const h = $('filter-host').value;
      const a = $('suggest');
      a.hidden = !h;
      if (h) a.href = 'api/v1/suggest?hostname=' + encodeURIComponent(h);
      else a.removeAttribute('href');
      $('show-observed').hidden = !h;
      state.observed.host = h;
      if (!h && state.observed.open) setObservedOpen(false);
      else if (state.observed.open) loadObserved();
    });
    $('show-observed').addEventListener('click', () => setObservedOpen(!state.observed.open));
    $('pause').addEventListener('click', () => {
      state.paused = !state.paused;
      $('pause').textContent = state.paused ? 'Resume' : 'Pause';
      if (state.paused) {
        setStatus('paused', 'paused');
      } else {
        const p = state.pending;
        state.pending = [];
        add(p, true);
        setStatus('live', 'live');
      }
    });
    $('clear').addEventListener('click', async () => {
      if (!window.confirm('Remove every stored event from the dashboard?')) return;
      await api('api/v1/logs', { method: 'DELETE' });
    });
    $('logout').addEventListener('click', async () => {
      await api('logout', { method: 'POST' });
      window.location.assign('./');
    });
    setInterval(chart, 30000);
    load();
  }

  init();
})();
