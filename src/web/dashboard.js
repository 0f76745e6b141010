/**
 * The dashboard (GET / in a browser). Plain JavaScript, no framework, no build step. It reads the
 * service's own API — health, health/detailed, analytics, analytics/{id} — with URLs relative to
 * the page's <base>, which the server sets to its external prefix, so the same page works at / on
 * a server and under /default/mlops-service-lambda/ through API Gateway.
 *
 * Numbers: headline totals add up the lifetime summaries of GET /analytics; the p95 and the daily
 * series come from GET /analytics/{id}?days=N (the window picked at the top), fetched for the
 * busiest businesses only. ?refresh=<seconds> changes the 10 s auto-refresh period.
 * No inline script anywhere (the page's Content-Security-Policy forbids it).
 */
(() => {
  'use strict';

  const KEY_STORE = 'mlops-dashboard.api-key';
  const query = new URLSearchParams(location.search);
  const REFRESH_MS = Math.min(3600, Math.max(2, Number(query.get('refresh')) || 10)) * 1000;
  /** Businesses whose windowed analytics are fetched on every refresh (one request each). */
  const MAX_DETAILED = 20;
  const CONCURRENCY = 4;
  const OVERVIEW_LINES = 8;
  const OVERVIEW_BARS = 12;

  const $ = (selector, root = document) => root.querySelector(selector);
  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (v == null) continue;
      if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k in node && k !== 'list') node[k] = v;
      else node.setAttribute(k, v);
    }
    node.append(...children.filter((c) => c != null));
    return node;
  };

  function storedKey() {
    try {
      return sessionStorage.getItem(KEY_STORE) || '';
    } catch {
      return '';
    }
  }

  const state = {
    key: storedKey(),
    keyRequired: false,
    paused: false,
    timer: 0,
    running: null,
    again: false,
    refreshes: 0,
    days: 30,
    sort: { key: 'total_requests', dir: -1 },
    selected: selectedFromHash(),
    summaries: [],
    details: new Map(),
    updatedAt: null,
    failedAt: null,
    drawn: new Map(),
  };

  // ---------------------------------------------------------------------------------------------
  // Formatting
  // ---------------------------------------------------------------------------------------------

  const intFmt = new Intl.NumberFormat();
  const pctFmt = new Intl.NumberFormat(undefined, { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const secFmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const clockFmt = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
  const stampFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  const fmt = {
    int: (v) => intFmt.format(v),
    pct: (v) => pctFmt.format(v),
    ms: (v) => (v >= 1000 ? `${secFmt.format(v / 1000)} s` : `${intFmt.format(Math.round(v))} ms`),
    usd: (v) =>
      new Intl.NumberFormat(undefined, {
        style: 'currency',
        currency: 'USD',
        // Cents hide what a few hundred cheap model calls cost: 4 decimals below a dollar.
        minimumFractionDigits: v !== 0 && Math.abs(v) < 1 ? 4 : 2,
        maximumFractionDigits: v !== 0 && Math.abs(v) < 1 ? 4 : 2,
      }).format(v),
    when: (iso) => (iso ? stampFmt.format(new Date(iso)) : '—'),
    duration(seconds) {
      const s = Math.floor(seconds);
      const parts = [
        [Math.floor(s / 86400), 'd'],
        [Math.floor((s % 86400) / 3600), 'h'],
        [Math.floor((s % 3600) / 60), 'min'],
        [s % 60, 's'],
      ];
      const first = parts.findIndex(([n]) => n > 0);
      return first < 0 ? '0 s' : parts.slice(first, first + 2).map(([n, u]) => `${n} ${u}`).join(' ');
    },
  };

  /** Error-rate traffic light: green under 5 %, amber 5–10 %, red over 10 %. */
  function errorTone(rate) {
    if (rate < 0.05) return ['good', 'healthy: under 5 %'];
    if (rate <= 0.1) return ['warn', 'elevated: 5–10 %'];
    return ['bad', 'high: over 10 %'];
  }

  // ---------------------------------------------------------------------------------------------
  // API
  // ---------------------------------------------------------------------------------------------

  async function api(path, withKey) {
    const headers = { Accept: 'application/json' };
    if (withKey && state.key) headers['X-API-Key'] = state.key;
    try {
      const res = await fetch(path, { headers, cache: 'no-store' });
      let body = null;
      try {
        body = await res.json();
      } catch {
        // Not JSON (a proxy's error page): the status says enough.
      }
      return { status: res.status, ok: res.ok, body, retryAfter: res.headers.get('Retry-After') };
    } catch (error) {
      return { status: 0, ok: false, body: null, error };
    }
  }

  async function mapLimit(items, limit, fn) {
    const out = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return out;
  }

  /** What an answer that is not 2xx means, in the reader's terms, and what to do about it. */
  function explain(answer) {
    const said = answer.body && answer.body.message ? ` The service said: “${answer.body.message}”` : '';
    const retry = `This page tries again every ${REFRESH_MS / 1000} s${state.paused ? ' once auto-refresh is resumed' : ''}.`;
    switch (answer.status) {
      case 0:
        return ['Cannot reach the service', `The request did not get an answer (network down, or the service stopped). ${retry}`];
      case 401:
        return [
          'API key required',
          'This service shows analytics only to clients with one of its API keys (MLOPS_API_KEY or MLOPS_API_KEYS) and this tab has not sent one. Enter a key in the field above.',
        ];
      case 403:
        return [
          'API key not accepted (403)',
          'The key used by this tab is not one of the service’s keys. Check it against MLOPS_API_KEY / MLOPS_API_KEYS and enter it again above.',
        ];
      case 429:
        return ['Rate limited (429)', `Too many requests with this key (RATE_LIMIT_PER_MINUTE).${said} ${retry}`];
      case 503:
        return [
          'Database unavailable (503)',
          `The service is running but cannot reach its database, so there are no numbers to show and new events are refused until it is back. Check DATABASE_URL and the database server.${said} ${retry}`,
        ];
      default:
        return [`Unexpected answer (HTTP ${answer.status})`, `${said || 'The service answered with an error.'} ${retry}`];
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Banner, key field, refresh status
  // ---------------------------------------------------------------------------------------------

  function showBanner([title, text], tone = 'bad') {
    const banner = $('#banner');
    $('#banner-title').textContent = title;
    $('#banner-text').textContent = text;
    banner.dataset.tone = tone;
    banner.hidden = false;
  }

  function hideBanner() {
    $('#banner').hidden = true;
  }

  function showUpdated() {
    const at = (date) => el('time', { dateTime: date.toISOString() }, clockFmt.format(date));
    const parts = [];
    const add = (...p) => parts.push(...(parts.length ? [' · '] : []), ...p);
    if (state.paused) add('Paused');
    if (state.failedAt) add('Not updated at ', at(state.failedAt));
    if (state.updatedAt) add(state.failedAt ? 'data from ' : 'Updated ', at(state.updatedAt));
    else if (!state.failedAt) add('Loading…');
    if (!state.paused) add(`every ${REFRESH_MS / 1000} s`);
    $('#updated').replaceChildren(...parts);
  }

  // ---------------------------------------------------------------------------------------------
  // Refresh cycle
  // ---------------------------------------------------------------------------------------------

  function schedule() {
    clearTimeout(state.timer);
    if (state.paused) return;
    state.timer = setTimeout(() => {
      // A hidden tab does not poll (each poll is a few requests, or Lambda invocations).
      if (document.hidden) schedule();
      else refresh();
    }, REFRESH_MS);
  }

  function refresh() {
    if (state.running) {
      state.again = true;
      return state.running;
    }
    clearTimeout(state.timer);
    state.refreshes += 1;
    document.body.dataset.refreshes = String(state.refreshes);
    document.body.setAttribute('aria-busy', 'true');
    state.running = load()
      .catch((error) => {
        state.failedAt = new Date();
        console.error('dashboard refresh failed', error);
        showBanner(['Dashboard error', String((error && error.message) || error)]);
      })
      .finally(() => {
        state.running = null;
        showUpdated();
        document.body.removeAttribute('aria-busy');
        if (state.again) {
          state.again = false;
          refresh();
        } else schedule();
      });
    return state.running;
  }

  async function load() {
    const [health, detailed] = await Promise.all([api('health'), api('health/detailed')]);
    state.failedAt = new Date(); // until this refresh gets through
    if (!health.ok || !health.body) {
      document.body.dataset.state = 'error';
      showBanner(explain(health));
      return;
    }
    renderStatus(health.body, detailed.body);
    state.keyRequired = Boolean(health.body.security && health.body.security.api_key_required);
    $('#key-form').hidden = !state.keyRequired;
    if (state.keyRequired && !state.key) {
      // Asking without a key would only earn a 401: say what is needed instead.
      clearData('key');
      showBanner(explain({ status: 401 }), 'info');
      return;
    }

    const list = await api('analytics', true);
    if (!list.ok || !list.body) {
      if (list.status === 401 || list.status === 403) clearData('key');
      else document.body.dataset.state = 'error';
      showBanner(explain(list));
      return;
    }
    const summaries = list.body.businesses;
    const busiest = [...summaries].sort((a, b) => b.total_requests - a.total_requests).slice(0, MAX_DETAILED).map((b) => b.business_id);
    if (state.selected && !busiest.includes(state.selected)) busiest.push(state.selected);
    const days = state.days;
    const answers = await mapLimit(busiest, CONCURRENCY, (id) => api(`analytics/${encodeURIComponent(id)}?days=${days}`, true));
    const details = new Map();
    let failed = null;
    answers.forEach((a, i) => (a.ok && a.body ? details.set(busiest[i], a.body) : (failed = failed || a)));

    state.summaries = summaries;
    state.details = details;
    state.updatedAt = new Date();
    state.failedAt = null;
    if (failed) showBanner(explain(failed));
    else if (detailed.body && detailed.body.database && detailed.body.database.status === 'down') showBanner(explain({ status: 503, body: { message: detailed.body.database.error } }));
    else hideBanner();
    render();
  }

  function clearData(why) {
    state.summaries = [];
    state.details = new Map();
    document.body.dataset.state = why;
    render(true);
  }

  // ---------------------------------------------------------------------------------------------
  // Rendering
  // ---------------------------------------------------------------------------------------------

  const KIND = { pglite: 'PGlite (embedded)', postgres: 'PostgreSQL' };

  function renderStatus(health, detailed) {
    const set = (name, text, tone, title) => {
      const dd = $(`[data-status="${name}"]`);
      dd.textContent = text;
      dd.dataset.tone = tone || '';
      if (title) dd.title = title;
      else dd.removeAttribute('title');
    };
    const d = detailed && detailed.runtime ? detailed : null;
    const runtime = health.runtime.name === 'lambda' ? 'AWS Lambda' : 'Node server';
    set('status', d ? d.status : health.status, d && d.status !== 'healthy' ? 'bad' : 'good');
    set('runtime', `${runtime}${d ? ` · Node ${d.runtime.node_version.replace(/^v/, '')}` : ''} · ${health.environment}`);
    set('version', health.version);
    const db = d && d.database;
    if (!health.database.configured) set('database', health.database.message || 'not configured', 'bad');
    else if (!db) set('database', KIND[health.database.kind] || health.database.kind);
    else if (db.status === 'up') set('database', `${KIND[db.kind] || db.kind} · up · ${db.latency_ms} ms`, 'good', db.location);
    else set('database', `${KIND[db.kind] || db.kind || ''} · ${db.status}${db.error ? `: ${db.error}` : ''}`, 'bad', db.location);
    if (d) {
      const r = d.runtime;
      const n = `${r.cold_starts} cold start${r.cold_starts === 1 ? '' : 's'} so far`;
      set('cold_start', `${r.cold_start ? 'yes, this request started the instance' : 'no, warm'} (${n})`);
      set('uptime', fmt.duration(d.uptime_seconds), '', `since ${fmt.when(r.started_at)}`);
    } else {
      set('cold_start', health.runtime.cold_start === undefined ? '—' : health.runtime.cold_start ? 'yes' : 'no');
      set('uptime', '—');
    }
    set('instance', health.runtime.instance_id);
  }

  function totals(list) {
    const sum = (f) => list.reduce((acc, b) => acc + f(b), 0);
    const requests = sum((b) => b.total_requests);
    // error_rate is rounded to 4 decimals: rounding rate × requests recovers each business's count.
    const errors = sum((b) => Math.round(b.error_rate * b.total_requests));
    const requested = sum((b) => b.appointment_requests);
    const booked = sum((b) => b.appointments_booked);
    return {
      requests,
      errors,
      error_rate: requests ? errors / requests : 0,
      tokens: sum((b) => b.total_tokens_used),
      cost: Math.round(sum((b) => b.total_api_cost_usd) * 1e6) / 1e6,
      requested,
      booked,
      conversion: requested ? booked / requested : 0,
      handoffs: sum((b) => b.human_handoffs),
    };
  }

  function setKpi(root, name, value, text, note, tone) {
    const box = $(`[data-kpi="${name}"]`, root);
    box.dataset.value = value == null ? '' : String(value);
    box.dataset.tone = tone || '';
    $('.kpi-value', box).textContent = text;
    if (note != null) $('.kpi-note', box).textContent = note;
  }

  function renderKpis(empty) {
    const root = $('#kpis');
    const t = totals(state.summaries);
    const has = t.requests > 0;
    setKpi(root, 'requests', t.requests, fmt.int(t.requests), `all time, ${fmt.int(state.summaries.length)} business${state.summaries.length === 1 ? '' : 'es'}`);
    const [tone, verdict] = errorTone(t.error_rate);
    setKpi(root, 'error_rate', t.error_rate, has ? fmt.pct(t.error_rate) : '—', has ? `${fmt.int(t.errors)} errors · ${verdict}` : 'no requests yet', has ? tone : '');
    // Percentiles of several businesses do not combine; the slowest business's p95 bounds the overall one from above.
    const p95s = [...state.details.values()].filter((a) => a.metrics.total_requests > 0);
    const worst = p95s.reduce((w, a) => (!w || a.metrics.p95_response_time_ms > w.metrics.p95_response_time_ms ? a : w), null);
    const p95Note = `last ${state.days} days${p95s.length > 1 ? `, slowest business (${worst.business_id})` : ''}`;
    setKpi(
      root,
      'p95',
      worst ? worst.metrics.p95_response_time_ms : null,
      worst ? `${fmt.ms(worst.metrics.p95_response_time_ms)}` : '—',
      empty ? 'window' : worst ? p95Note : `no requests in the last ${state.days} days`,
    );
    setKpi(root, 'tokens', t.tokens, fmt.int(t.tokens));
    setKpi(root, 'cost', t.cost, fmt.usd(t.cost));
    setKpi(root, 'conversion', t.conversion, t.requested ? fmt.pct(t.conversion) : '—', `${fmt.int(t.booked)} booked of ${fmt.int(t.requested)} requested`);
    setKpi(root, 'handoffs', t.handoffs, fmt.int(t.handoffs));
  }

  /** Draws a chart unless the same data is already drawn there (refreshes then cost nothing). */
  function draw(id, kind, opts) {
    const node = document.getElementById(id);
    const signature = `${kind}:${JSON.stringify(opts)}`;
    const current = state.drawn.get(id);
    if (current && current.signature === signature) return;
    if (current) current.chart.destroy();
    state.drawn.set(id, { signature, chart: window.MlopsCharts[kind](node, opts) });
  }

  function undraw(id) {
    const current = state.drawn.get(id);
    if (current) current.chart.destroy();
    state.drawn.delete(id);
  }

  const dayMs = (date) => Date.parse(`${date}T00:00:00Z`);

  function renderOverview() {
    const detailed = state.summaries
      .filter((b) => state.details.has(b.business_id))
      .sort((a, b) => b.total_requests - a.total_requests)
      .map((b) => state.details.get(b.business_id));
    const lines = detailed.slice(0, OVERVIEW_LINES);
    const x = lines.length ? lines[0].daily.map((d) => dayMs(d.date)) : [];
    draw('chart-daily', 'line', {
      title: `Requests per day${detailed.length > OVERVIEW_LINES ? ` (${OVERVIEW_LINES} busiest)` : ''}`,
      x,
      xKind: 'time',
      utc: true,
      series: lines.map((a) => ({ label: a.business_id, values: a.daily.map((d) => d.requests) })),
      yLabel: 'requests',
      emptyText: `No requests in the last ${state.days} days`,
    });
    const barsOf = detailed.slice(0, OVERVIEW_BARS).filter((a) => a.metrics.total_requests > 0);
    draw('chart-latency', 'bars', {
      title: `Response time by business, last ${state.days} days (ms)`,
      labels: barsOf.map((a) => a.business_id),
      series: [
        { label: 'average', values: barsOf.map((a) => a.metrics.avg_response_time_ms) },
        { label: 'p95', values: barsOf.map((a) => a.metrics.p95_response_time_ms) },
      ],
      xLabel: 'business',
      yLabel: 'ms',
      emptyText: `No requests in the last ${state.days} days`,
    });
  }

  function sortValue(b, key) {
    if (key === 'p95_response_time_ms') {
      const a = state.details.get(b.business_id);
      return a && a.metrics.total_requests > 0 ? a.metrics.p95_response_time_ms : null;
    }
    if (key === 'last_event_at') return b.last_event_at ? Date.parse(b.last_event_at) : null;
    return b[key];
  }

  function renderTable() {
    const { key, dir } = state.sort;
    for (const th of document.querySelectorAll('#business-table th[data-sort]')) {
      th.setAttribute('aria-sort', th.dataset.sort === key ? (dir > 0 ? 'ascending' : 'descending') : 'none');
    }
    const rows = [...state.summaries].sort((a, b) => {
      const va = sortValue(a, key);
      const vb = sortValue(b, key);
      if (va == null || vb == null) return va == null ? (vb == null ? 0 : 1) : -1; // gaps last either way
      const c = typeof va === 'string' ? va.localeCompare(vb) : va - vb;
      return c * dir || a.business_id.localeCompare(b.business_id);
    });
    const tbody = $('#business-table tbody');
    const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest('tbody tr') : null;
    const focusedId = focused ? focused.dataset.business : null;
    tbody.textContent = '';
    for (const b of rows) {
      const p95 = sortValue(b, 'p95_response_time_ms');
      const [tone] = errorTone(b.error_rate);
      const selected = b.business_id === state.selected;
      const cell = (text, props = {}) => el('td', { className: 'num', ...props }, text);
      const tr = el(
        'tr',
        { dataset: { business: b.business_id }, className: selected ? 'selected' : '', 'aria-current': selected ? 'true' : null },
        el('th', { scope: 'row' }, el('button', { type: 'button', className: 'link', title: `Open the analytics of ${b.business_id}` }, b.business_id)),
        cell(fmt.int(b.total_requests), { dataset: { col: 'total_requests' } }),
        cell(fmt.pct(b.error_rate), { dataset: { col: 'error_rate', tone: b.total_requests ? tone : '' } }),
        cell(fmt.ms(b.avg_response_time_ms)),
        cell(p95 == null ? '—' : fmt.ms(p95)),
        cell(fmt.int(b.total_tokens_used)),
        cell(fmt.usd(b.total_api_cost_usd)),
        cell(b.appointment_requests ? fmt.pct(b.appointment_conversion_rate) : '—'),
        cell(fmt.int(b.human_handoffs)),
        el('td', { className: 'when' }, fmt.when(b.last_event_at)),
      );
      tbody.append(tr);
    }
    if (focusedId) {
      const again = [...tbody.rows].find((r) => r.dataset.business === focusedId);
      if (again) $('button', again).focus();
    }
  }

  function renderDetail() {
    const section = $('#detail');
    const id = state.selected;
    const a = id ? state.details.get(id) : null;
    section.hidden = !id;
    if (!id) {
      ['chart-requests', 'chart-response', 'chart-models', 'chart-intents', 'chart-cost-source'].forEach(undraw);
      return;
    }
    $('#detail-title').textContent = id;
    const kpis = $('#detail-kpis');
    kpis.textContent = '';
    if (!a) {
      $('#detail-window').textContent = state.running ? 'Loading…' : state.summaries.length ? 'No analytics for this business.' : '';
      return;
    }
    const m = a.metrics;
    $('#detail-window').textContent = `Last ${a.window.days} days, ${a.window.from} to ${a.window.to} (UTC).`;
    const [tone, verdict] = errorTone(m.error_rate);
    const items = [
      ['requests', 'Requests', m.total_requests, fmt.int(m.total_requests)],
      ['conversations', 'Conversations', m.total_conversations, fmt.int(m.total_conversations)],
      ['error_rate', 'Error rate', m.error_rate, fmt.pct(m.error_rate), m.total_requests ? verdict : '', m.total_requests ? tone : ''],
      ['avg', 'Average time', m.avg_response_time_ms, fmt.ms(m.avg_response_time_ms)],
      ['p50', 'p50', m.p50_response_time_ms, fmt.ms(m.p50_response_time_ms)],
      ['p95', 'p95', m.p95_response_time_ms, `${fmt.ms(m.p95_response_time_ms)}`],
      ['tokens', 'Tokens', m.total_tokens_used, fmt.int(m.total_tokens_used), `${fmt.int(Math.round(m.avg_tokens_used))} per reply`],
      ['cost', 'Cost', m.total_api_cost_usd, fmt.usd(m.total_api_cost_usd), `client ${fmt.usd(a.cost_by_source.client_usd)} · price table ${fmt.usd(a.cost_by_source.price_table_usd)}`],
      // Unknown cost is shown as unknown, never folded into the dollars as $0.
      ['unpriced', 'Unpriced tokens', m.unpriced_tokens, fmt.int(m.unpriced_tokens),
        a.cost_by_source.unpriced_requests ? `${fmt.int(a.cost_by_source.unpriced_requests)} replies of unknown cost` : 'every reply has a cost',
        a.cost_by_source.unpriced_requests ? 'warn' : ''],
      ['conversion', 'Conversion', m.appointment_conversion_rate, m.appointment_requests ? fmt.pct(m.appointment_conversion_rate) : '—', `${fmt.int(m.appointments_booked)} of ${fmt.int(m.appointment_requests)}`],
      ['handoffs', 'Hand-offs', m.human_handoffs, fmt.int(m.human_handoffs)],
    ];
    for (const [name, label, value, text, note, t] of items) {
      kpis.append(
        el(
          'div',
          { className: 'kpi', dataset: { kpi: name, value: String(value), tone: t || '' } },
          el('span', { className: 'kpi-label' }, label),
          el('output', { className: 'kpi-value' }, text),
          note ? el('span', { className: 'kpi-note' }, note) : null,
        ),
      );
    }
    const x = a.daily.map((d) => dayMs(d.date));
    const none = `No requests in the last ${a.window.days} days`;
    draw('chart-requests', 'line', {
      title: 'Requests per day',
      x,
      xKind: 'time',
      utc: true,
      series: [{ label: 'requests', values: a.daily.map((d) => d.requests) }],
      yLabel: 'requests',
      emptyText: none,
    });
    draw('chart-response', 'line', {
      title: 'Average response time per day (ms)',
      x,
      xKind: 'time',
      utc: true,
      series: [{ label: 'average ms', values: a.daily.map((d) => (d.requests ? d.avg_response_time_ms : null)) }],
      yLabel: 'ms',
      colors: [getComputedStyle(document.documentElement).getPropertyValue('--mc-2').trim() || undefined],
      emptyText: none,
    });
    const models = [...a.by_model].sort((p, q) => q.cost_usd - p.cost_usd);
    draw('chart-models', 'bars', {
      title: 'Cost by model (USD)',
      labels: models.map((r) => r.model_name),
      series: [{ label: 'cost USD', values: models.map((r) => r.cost_usd) }],
      xLabel: 'model',
      yLabel: 'USD',
      colors: [getComputedStyle(document.documentElement).getPropertyValue('--mc-3').trim() || undefined],
      emptyText: none,
    });
    const source = a.cost_by_source;
    draw('chart-cost-source', 'bars', {
      title: 'Cost by source (USD)',
      labels: ['client', 'price table'],
      series: [{ label: 'cost USD', values: [source.client_usd, source.price_table_usd] }],
      xLabel: 'source',
      yLabel: 'USD',
      colors: [getComputedStyle(document.documentElement).getPropertyValue('--mc-4').trim() || undefined],
      emptyText: source.unpriced_requests ? `Only unpriced replies: ${fmt.int(source.unpriced_tokens)} tokens of unknown cost` : none,
    });
    const intents = [...a.by_intent].sort((p, q) => q.requests - p.requests);
    draw('chart-intents', 'bars', {
      title: 'Intents',
      labels: intents.map((r) => r.intent),
      series: [{ label: 'requests', values: intents.map((r) => r.requests) }],
      xLabel: 'intent',
      yLabel: 'requests',
      colors: [getComputedStyle(document.documentElement).getPropertyValue('--mc-5').trim() || undefined],
      emptyText: none,
    });
  }

  function renderEmpty(show) {
    $('#empty').hidden = !show;
    if (!show) return;
    const track = new URL('track', document.baseURI).href;
    $('#track-url').textContent = track;
    const key = state.keyRequired ? " -H 'X-API-Key: <key>'" : '';
    $('#curl-example').textContent =
      `curl -X POST '${track}' -H 'Content-Type: application/json'${key} \\\n` +
      `  -d '{"business_id":"demo-dental","response_time_ms":840,"tokens_used":512,"intent_detected":"booking"}'`;
  }

  function render(noData = false) {
    const empty = !noData && state.summaries.length === 0;
    if (!noData) document.body.dataset.state = empty ? 'empty' : 'ready';
    renderEmpty(empty);
    $('#overview').hidden = noData || empty;
    $('#businesses').hidden = noData || empty;
    renderKpis(noData);
    if (noData || empty) {
      ['chart-daily', 'chart-latency'].forEach(undraw);
      $('#business-table tbody').textContent = '';
    } else {
      renderOverview();
      renderTable();
    }
    renderDetail();
  }

  // ---------------------------------------------------------------------------------------------
  // Selection (kept in the URL fragment, so a reload or a shared link reopens it)
  // ---------------------------------------------------------------------------------------------

  function selectedFromHash() {
    const m = /^#business=(.+)$/.exec(location.hash);
    if (!m) return null;
    try {
      return decodeURIComponent(m[1]);
    } catch {
      return null;
    }
  }

  function select(id) {
    state.selected = id;
    // Absolute path: with a <base>, a bare "#…" would resolve against the base, not this page.
    history.replaceState(null, '', `${location.pathname}${location.search}${id ? `#business=${encodeURIComponent(id)}` : ''}`);
    if (id && !state.details.has(id)) refresh();
    if (state.summaries.length) render();
    else renderDetail();
    if (id) {
      $('#detail').scrollIntoView({ block: 'start', behavior: 'smooth' });
      $('#detail-title').focus({ preventScroll: true });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring
  // ---------------------------------------------------------------------------------------------

  function start() {
    $('#business-table tbody').addEventListener('click', (event) => {
      const row = event.target.closest('tr[data-business]');
      if (row) select(row.dataset.business);
    });
    for (const th of document.querySelectorAll('#business-table th[data-sort]')) {
      $('button', th).addEventListener('click', () => {
        const key = th.dataset.sort;
        const text = key === 'business_id';
        state.sort = state.sort.key === key ? { key, dir: -state.sort.dir } : { key, dir: text ? 1 : -1 };
        renderTable();
      });
    }
    $('#detail-close').addEventListener('click', () => {
      const id = state.selected;
      select(null);
      const row = id && [...$('#business-table tbody').rows].find((r) => r.dataset.business === id);
      if (row) $('button', row).focus();
    });
    $('#detail').addEventListener('keydown', (event) => {
      if (event.key === 'Escape') $('#detail-close').click();
    });
    window.addEventListener('hashchange', () => {
      const id = selectedFromHash();
      if (id !== state.selected) select(id);
    });

    $('#pause').addEventListener('click', (event) => {
      state.paused = !state.paused;
      const button = event.currentTarget;
      button.setAttribute('aria-pressed', String(state.paused));
      button.textContent = state.paused ? 'Resume auto-refresh' : 'Pause auto-refresh';
      showUpdated();
      if (state.paused) clearTimeout(state.timer);
      else refresh();
    });
    $('#refresh-now').addEventListener('click', () => refresh());
    $('#days').addEventListener('change', (event) => {
      state.days = Number(event.currentTarget.value) || 30;
      refresh();
    });

    const keyInput = $('#api-key');
    keyInput.value = state.key;
    $('#key-form').addEventListener('submit', (event) => {
      event.preventDefault();
      state.key = keyInput.value.trim();
      try {
        if (state.key) sessionStorage.setItem(KEY_STORE, state.key);
        else sessionStorage.removeItem(KEY_STORE);
      } catch {
        // Storage disabled: the key still works until the tab is closed.
      }
      refresh();
    });
    $('#forget-key').addEventListener('click', () => {
      keyInput.value = '';
      $('#key-form').requestSubmit();
    });

    document.addEventListener('visibilitychange', () => {
      const stale = !state.updatedAt || Date.now() - state.updatedAt.getTime() >= REFRESH_MS;
      if (!document.hidden && !state.paused && stale) refresh();
    });

    refresh();
  }

  if (!window.MlopsCharts) {
    document.body.dataset.state = 'error';
    showBanner(['Dashboard files missing', 'charts.js or uPlot did not load; reload the page.']);
    return;
  }
  start();
})();
