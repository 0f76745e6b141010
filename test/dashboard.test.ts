/**
 * The dashboard (GET / in a browser) in Debian's Chromium driven by playwright-core, against the
 * real service: a server process on PGlite with events sent through the API, a fresh install, and
 * the packaged Lambda zip in the local emulator under /default/mlops-service-lambda. The numbers
 * on the page are compared with what the API itself answers. Screenshots go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page, Request } from 'playwright-core';
import { ASSET_FILES, readAsset } from '../src/core/dashboard.ts';
import { startEmulator, type EmulatorHandle } from '../tools/lambda-emulator/emulator.ts';
import { KEY_STORE, launchBrowser, openPage, screenshot, seriesInk, skipBrowser, type OpenedPage } from './helpers/browser.ts';
import { makeEvents, type TrackBody } from './helpers/events.ts';
import { call } from './helpers/http.ts';
import { ROOT } from './helpers/package.ts';
import { freshPgliteDir } from './helpers/pglite-template.ts';
import { createMigratedTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const KEY = 'dashboard-test-key-0123456789';
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
const WAIT = { timeout: 20_000 };

/** Error share per business, exact, so the page shows all three error-rate colours. */
const ERROR_SHARE: Record<string, number> = { 'dental-smile': 0.02, 'repair-joe': 0.07, 'lawfirm-baker': 0.16, 'dental-bright': 0.04 };

function events(count: number, seed: number): TrackBody[] {
  const seen = new Map<string, number>();
  return makeEvents(count, seed, Object.keys(ERROR_SHARE)).map((e) => {
    const k = seen.get(e.business_id) ?? 0;
    seen.set(e.business_id, k + 1);
    const share = ERROR_SHARE[e.business_id]!;
    const error = Math.floor((k + 1) * share) > Math.floor(k * share);
    return { ...e, response_type: error ? 'error' : e.response_type === 'error' ? 'answer' : e.response_type };
  });
}

async function sendEvents(base: string, list: TrackBody[], key?: string): Promise<void> {
  const headers: Record<string, string> = key ? { 'X-API-Key': key } : {};
  for (let i = 0; i < list.length; i += 100) {
    const r = await call(`${base}/track/batch`, { method: 'POST', json: { events: list.slice(i, i + 100) }, headers });
    assert.equal(r.status, 200, r.text);
  }
  // One through the single-event route too.
  const one = await call(`${base}/track`, { method: 'POST', json: { business_id: 'dental-smile', response_time_ms: 420, tokens_used: 300 }, headers });
  assert.equal(one.status, 200, one.text);
}

const en = {
  int: (v: number) => new Intl.NumberFormat('en-US').format(v),
  pct: (v: number) => new Intl.NumberFormat('en-US', { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(v),
};
const tone = (rate: number) => (rate < 0.05 ? 'good' : rate <= 0.1 ? 'warn' : 'bad');

/** What the page must show, computed here from the API's own answers. */
async function expectedFromApi(base: string, key?: string) {
  const headers: Record<string, string> = key ? { 'X-API-Key': key } : {};
  const list = await call(`${base}/analytics`, { headers });
  assert.equal(list.status, 200);
  const businesses = list.body.businesses as any[];
  const details = await Promise.all(businesses.map(async (b) => (await call(`${base}/analytics/${encodeURIComponent(b.business_id)}?days=30`, { headers })).body));
  const sum = (f: (b: any) => number) => businesses.reduce((a, b) => a + f(b), 0);
  const requests = sum((b) => b.total_requests);
  const errors = sum((b) => Math.round(b.error_rate * b.total_requests));
  const requested = sum((b) => b.appointment_requests);
  return {
    businesses,
    details: new Map(details.map((d) => [d.business_id as string, d])),
    kpis: {
      requests,
      error_rate: errors / requests,
      p95: Math.max(...details.map((d) => d.metrics.p95_response_time_ms)),
      tokens: sum((b) => b.total_tokens_used),
      cost: sum((b) => b.total_api_cost_usd),
      conversion: sum((b) => b.appointments_booked) / requested,
      handoffs: sum((b) => b.human_handoffs),
    },
  };
}

type Kpis = Record<string, { value: string; text: string; tone: string }>;
function readKpis(page: Page, root: string): Promise<Kpis> {
  return page.$$eval(`${root} [data-kpi]`, (els) =>
    Object.fromEntries(
      els.map((e) => {
        const el = e as HTMLElement;
        return [el.dataset.kpi, { value: el.dataset.value ?? '', text: el.querySelector('.kpi-value')!.textContent ?? '', tone: el.dataset.tone ?? '' }];
      }),
    ),
  );
}

function assertClean(opened: OpenedPage): void {
  assert.deepEqual(opened.problems.console, [], 'no console errors');
  assert.deepEqual(opened.problems.failed, [], 'no failed requests');
}

/**
 * `npm run package` into a temporary folder, as helpers/package.ts does, but without blocking:
 * it runs while the servers start.
 */
async function buildLambdaZip(): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'mlops-package-'));
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/package-lambda.ts', '--lambda-only', '--quiet', '--out-dir', out], { cwd: ROOT });
  return join(out, 'lambda-deployment.zip');
}

const ready = (page: Page) => page.waitForSelector('body[data-state="ready"]:not([aria-busy])', WAIT);
const bodyState = (page: Page) => page.locator('body').getAttribute('data-state');

describe('dashboard in Chromium', { skip: skipBrowser }, () => {
  let browser: Browser;
  let keyed: ServerProcess;
  let fresh: ServerProcess;
  let zip: Promise<string> | undefined;
  const dirs: string[] = [];

  before(async () => {
    if (!skipPostgres) {
      zip = buildLambdaZip();
      zip.catch(() => {}); // awaited (and reported) by the Lambda suite
    }
    dirs.push(...(await Promise.all([freshPgliteDir(), freshPgliteDir()])));
    // allSettled: whatever did start is assigned, so after() stops it even when another part failed.
    const started = await Promise.allSettled([
      launchBrowser().then((b) => (browser = b)),
      startServerProcess({ DATA_DIR: dirs[0]!, MLOPS_API_KEYS: `${KEY},another-key-abcdefghijkl` }).then((s) => (keyed = s)),
      startServerProcess({ DATA_DIR: dirs[1]! }).then((s) => (fresh = s)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    await sendEvents(keyed.url, events(240, 41), KEY);
  });
  after(async () => {
    await browser?.close();
    await Promise.all([keyed?.stop(), fresh?.stop()]);
    if (zip) dirs.push(dirname(await zip.catch(() => '.')));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('answers GET / with the page to browsers (strict CSP, no inline script) and the JSON index to everyone else', async () => {
    const page = await call(`${keyed.url}/`, { headers: { Accept: BROWSER_ACCEPT } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe/);
    assert.equal(page.headers.get('vary'), 'Accept');
    assert.match(page.text, /<base href="\/">/);
    assert.doesNotMatch(page.text, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script is a file');
    assert.doesNotMatch(page.text, /\sstyle=|<style/, 'no inline style');
    assert.doesNotMatch(page.text.replace('<base href="/">', ''), /(src|href)="\//, 'only relative URLs');

    for (const accept of [undefined, '*/*', 'application/json', 'text/html;q=0.5, application/json']) {
      const index = await call(`${keyed.url}/`, { headers: accept ? { Accept: accept } : {} });
      assert.equal(index.status, 200);
      assert.equal(index.body.service, 'mlops-service-prometheus', `Accept: ${accept}`);
    }

    for (const [name, { type }] of Object.entries(ASSET_FILES)) {
      if (name === 'dashboard.html') continue;
      const asset = await call(`${keyed.url}/assets/${name}`);
      assert.equal(asset.status, 200, name);
      assert.equal(asset.headers.get('content-type'), type);
      const again = await fetch(`${keyed.url}/assets/${name}`, { headers: { 'If-None-Match': asset.headers.get('etag')! } });
      assert.equal(again.status, 304, `${name} revalidates`);
    }
    for (const name of ['dashboard.html', 'nope.js', '..%2Fpackage.json', 'constructor']) {
      const missing = await call(`${keyed.url}/assets/${name}`);
      assert.equal(missing.status, 404, name);
      assert.equal(missing.body.error, 'not_found');
    }
  });

  it('chart kit: line (time, number, log scales, markers), bars and histogram, inlined in one standalone HTML file', async () => {
    // As the comparison report uses it: uPlot, charts.js and charts.css inlined, no server.
    const text = async (name: string) => String((await readAsset(name))!.body);
    const html = `<!doctype html><html><head><meta charset="utf-8"><style>${await text('uPlot.min.css')}${await text('charts.css')}</style>
      <script>${await text('uPlot.iife.min.js')}</script><script>${await text('charts.js')}</script></head>
      <body style="width:900px">${['a', 'b', 'c', 'd', 'e'].map((id) => `<div id="${id}"></div>`).join('')}</body></html>`;
    const opened = await openPage(browser);
    const { page } = opened;
    try {
      await page.setContent(html);
      const result = await page.evaluate(() => {
        const C = (window as any).MlopsCharts;
        // Not an arrow function: tsx would wrap a named one in a helper that the page lacks.
        const $ = document.getElementById.bind(document) as (id: string) => HTMLElement;
        const t0 = Date.UTC(2026, 0, 1);
        const charts = [
          C.line($('a'), {
            title: 'Latency over time', x: [t0, t0 + 60_000, t0 + 120_000, t0 + 180_000], xKind: 'time',
            series: [{ label: 'server', values: [12, 15, null, 11] }, { label: 'lambda', values: [30, 28, 35, 31] }],
            yLabel: 'ms', markers: [{ x: t0 + 60_000, label: 'cold start' }],
          }),
          C.line($('b'), {
            title: 'Cost against traffic', x: [1e3, 1e4, 1e5, 1e6, 1e7], xKind: 'number', logX: true, logY: true,
            series: [{ label: 'EC2', values: [9, 9, 9, 9, 9] }, { label: 'Lambda', values: [0.01, 0.1, 1, 10, 100] }],
            yLabel: 'USD / month', markers: [{ x: 9e5, label: 'break-even' }],
          }),
          C.bars($('c'), { title: 'p50 / p99', labels: ['health', 'track', 'metrics'], series: [{ label: 'server', values: [1, 4, 9] }, { label: 'lambda', values: [3, 8, 20] }], yLabel: 'ms' }),
          C.histogram($('d'), { title: 'Distribution', edges: [1, 2, 5, 10, 20, 50], series: [{ label: 'server', counts: [5, 40, 30, 4, 1] }, { label: 'lambda', counts: [0, 10, 50, 20, 5] }], xLabel: 'ms', logX: true }),
          C.line($('e'), { title: 'Nothing yet', x: [], xKind: 'time', series: [{ label: 'x', values: [] }], yLabel: 'n' }),
        ];
        const out = charts.map((c, i) => ({ drawn: !!c.uplot, canvases: document.querySelectorAll(`#${'abcde'[i]} canvas`).length, destroy: typeof c.destroy }));
        charts[2].destroy();
        return { out, afterDestroy: document.querySelectorAll('#c canvas').length, empty: $('e').textContent };
      });
      assert.deepEqual(
        result.out.map((r) => [r.drawn, r.canvases, r.destroy]),
        [[true, 1, 'function'], [true, 1, 'function'], [true, 1, 'function'], [true, 1, 'function'], [false, 0, 'function']],
      );
      assert.equal(result.afterDestroy, 0, 'destroy() removes the chart');
      assert.match(result.empty, /Nothing yet.*No data yet/);
      for (const id of ['#a', '#b', '#d']) assert.ok((await seriesInk(page, id)) > 200, `${id} drawn`);
      await screenshot(page, 'chart-kit');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('asks for the API key when keys are configured, sends it as X-API-Key and keeps it in this tab only', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    const analytics: Request[] = [];
    page.on('request', (r) => new URL(r.url()).pathname.startsWith('/analytics') && analytics.push(r));
    try {
      await page.goto(`${keyed.url}/`);
      await page.waitForSelector('body[data-state="key"]', WAIT);
      assert.equal(await page.locator('#key-form').isVisible(), true);
      assert.match((await page.locator('#banner').textContent())!, /API key required/);
      assert.equal(analytics.length, 0, 'no request is sent that could only earn a 401');

      await page.locator('#api-key').fill(KEY);
      await page.locator('#api-key').press('Enter');
      await ready(page);
      assert.equal(await page.locator('#banner').isVisible(), false);
      assert.ok(analytics.length >= 2);
      for (const r of analytics) assert.equal(r.headers()['x-api-key'], KEY, r.url());
      const stored = await page.evaluate((name) => ({ session: sessionStorage.getItem(name), local: localStorage.length, cookie: document.cookie }), KEY_STORE);
      assert.deepEqual(stored, { session: KEY, local: 0, cookie: '' });
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('shows the API’s numbers: status, KPIs, the business table, and drawn charts, with no console error or failed request', async () => {
    const expected = await expectedFromApi(keyed.url, KEY);
    const health = (await call(`${keyed.url}/health`)).body;
    const opened = await openPage(browser, { apiKey: KEY });
    const { page } = opened;
    try {
      await page.goto(`${keyed.url}/`);
      await ready(page);
      assert.equal(await page.title(), 'MLOps metrics dashboard');
      assert.equal(await page.locator('link[rel="icon"]').getAttribute('href'), 'assets/favicon.svg');

      const kpis = await readKpis(page, '#kpis');
      const k = expected.kpis;
      assert.equal(Number(kpis.requests!.value), k.requests);
      assert.equal(kpis.requests!.text, en.int(k.requests));
      assert.ok(Math.abs(Number(kpis.error_rate!.value) - k.error_rate) < 1e-12);
      assert.equal(kpis.error_rate!.text, en.pct(k.error_rate));
      assert.equal(kpis.error_rate!.tone, tone(k.error_rate));
      assert.equal(Number(kpis.p95!.value), k.p95);
      assert.equal(Number(kpis.tokens!.value), k.tokens);
      assert.equal(kpis.tokens!.text, en.int(k.tokens));
      assert.ok(Math.abs(Number(kpis.cost!.value) - k.cost) < 1e-6);
      assert.ok(Math.abs(Number(kpis.conversion!.value) - k.conversion) < 1e-12);
      assert.equal(kpis.conversion!.text, en.pct(k.conversion));
      assert.equal(Number(kpis.handoffs!.value), k.handoffs);

      const status = await page.$$eval('[data-status]', (els) => Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset.status, e.textContent])));
      assert.equal(status.version, health.version);
      assert.match(status.runtime!, /^Node server/);
      assert.match(status.database!, /^PGlite \(embedded\) · up/);
      assert.equal(status.instance, health.runtime.instance_id);
      assert.match(status.uptime!, /\d+ (s|min|h|d)/);

      const rows = await page.$$eval('#business-table tbody tr', (trs) =>
        trs.map((tr) => ({
          id: (tr as HTMLElement).dataset.business!,
          requests: tr.querySelector('[data-col="total_requests"]')!.textContent,
          error: tr.querySelector('[data-col="error_rate"]') as HTMLElement,
        })).map((r) => ({ id: r.id, requests: r.requests, errorText: r.error.textContent, errorTone: r.error.dataset.tone })),
      );
      assert.equal(rows.length, expected.businesses.length);
      for (const b of expected.businesses) {
        const row = rows.find((r) => r.id === b.business_id)!;
        assert.equal(row.requests, en.int(b.total_requests), b.business_id);
        assert.equal(row.errorText, en.pct(b.error_rate));
        assert.equal(row.errorTone, tone(b.error_rate));
      }
      assert.deepEqual(new Set(rows.map((r) => r.errorTone)), new Set(['good', 'warn', 'bad']), 'the data shows every colour');

      assert.ok((await seriesInk(page, '#chart-daily')) > 100, 'requests per day drawn');
      assert.ok((await seriesInk(page, '#chart-latency')) > 1000, 'response time bars drawn');
      await screenshot(page, 'dashboard-wide');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('sorts the table by any column and opens a business from the keyboard alone', async () => {
    const opened = await openPage(browser, { apiKey: KEY });
    const { page } = opened;
    try {
      await page.goto(`${keyed.url}/`);
      await ready(page);
      const ids = () => page.$$eval('#business-table tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.business!));
      const sortOf = (col: string) => page.locator(`th[data-sort="${col}"]`).getAttribute('aria-sort');

      // Tab from the top of the page to the "Business" column header.
      let reached = false;
      for (let i = 0; i < 40 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement?.closest('th')?.dataset.sort === 'business_id');
      }
      assert.ok(reached, 'the sort buttons are reachable with Tab');
      await page.keyboard.press('Enter');
      assert.equal(await sortOf('business_id'), 'ascending');
      const names = await ids();
      assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b)));
      await page.keyboard.press('Enter');
      assert.equal(await sortOf('business_id'), 'descending');
      assert.deepEqual(await ids(), [...names].reverse());

      await page.locator('th[data-sort="error_rate"] button').click();
      assert.equal(await sortOf('error_rate'), 'descending');
      const rates = await page.$$eval('#business-table [data-col="error_rate"]', (tds) => tds.map((td) => parseFloat(td.textContent!)));
      assert.deepEqual(rates, [...rates].sort((a, b) => b - a));

      // Tab onwards to the first business and open it with Enter.
      const first = (await ids())[0]!;
      reached = false;
      for (let i = 0; i < 20 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement?.closest('tbody tr') != null);
      }
      assert.ok(reached, 'the rows are reachable with Tab');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#detail:not([hidden])', WAIT);
      assert.equal(await page.locator('#detail-title').textContent(), first);
      await page.keyboard.press('Escape');
      await page.waitForSelector('#detail[hidden]', { state: 'attached', ...WAIT });
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('opens a business’s analytics from its row: its numbers, five charts (cost by source too), a link that reopens it', async () => {
    const expected = await expectedFromApi(keyed.url, KEY);
    const id = 'lawfirm-baker';
    const a = expected.details.get(id);
    const opened = await openPage(browser, { apiKey: KEY });
    const { page } = opened;
    try {
      await page.goto(`${keyed.url}/`);
      await ready(page);
      await page.locator(`#business-table tr[data-business="${id}"] td`).first().click();
      await page.waitForSelector('#detail:not([hidden]) #chart-intents canvas', WAIT);
      assert.equal(await page.locator('#detail-title').textContent(), id);
      assert.equal(new URL(page.url()).hash, `#business=${id}`);
      const kpis = await readKpis(page, '#detail-kpis');
      const m = a.metrics;
      assert.equal(Number(kpis.requests!.value), m.total_requests);
      assert.equal(Number(kpis.conversations!.value), m.total_conversations);
      assert.equal(Number(kpis.p50!.value), m.p50_response_time_ms);
      assert.equal(Number(kpis.p95!.value), m.p95_response_time_ms);
      assert.equal(Number(kpis.cost!.value), m.total_api_cost_usd);
      assert.equal(Number(kpis.error_rate!.value), m.error_rate);
      assert.equal(kpis.error_rate!.tone, tone(m.error_rate));
      // Cost by source: the unpriced tokens as their own figure (warned when any), and a chart.
      assert.equal(Number(kpis.unpriced!.value), m.unpriced_tokens);
      assert.equal(kpis.unpriced!.tone, a.cost_by_source.unpriced_requests ? 'warn' : '');
      assert.ok(a.cost_by_source.client_usd + a.cost_by_source.price_table_usd > 0, 'the seeded business has a cost');
      for (const chart of ['#chart-requests', '#chart-response', '#chart-models', '#chart-intents', '#chart-cost-source']) {
        assert.ok((await seriesInk(page, chart)) > 20, `${chart} drawn`);
      }
      const legend = await page.locator('#chart-models .u-legend').textContent();
      assert.match(legend!, /cost USD/);
      await screenshot(page, 'dashboard-business');

      await page.reload();
      await page.waitForSelector('#detail:not([hidden]) #chart-intents canvas', WAIT);
      assert.equal(await page.locator('#detail-title').textContent(), id, 'the URL reopens it');
      await page.locator('#detail-close').click();
      assert.equal(await page.locator('#detail').isHidden(), true);
      assert.equal(new URL(page.url()).hash, '');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('shows what a wrong API key means (403 banner, no data), and works again once the key is fixed', async () => {
    const opened = await openPage(browser, { apiKey: 'not-the-right-key-123456' });
    const { page } = opened;
    try {
      await page.goto(`${keyed.url}/`);
      await page.waitForSelector('#banner:not([hidden])', WAIT);
      assert.equal(await bodyState(page), 'key');
      assert.equal(await page.locator('#banner').getAttribute('role'), 'alert');
      assert.match((await page.locator('#banner-title').textContent())!, /API key not accepted \(403\)/);
      assert.match((await page.locator('#banner-text').textContent())!, /MLOPS_API_KEY/);
      assert.equal(await page.locator('#business-table tbody tr').count(), 0);
      assert.equal(await page.locator('[data-kpi="requests"]').getAttribute('data-value'), '0');
      await screenshot(page, 'dashboard-wrong-key', false);
      assert.deepEqual(opened.problems.failed.map((f) => f.replace(/^GET \S+\/analytics: /, '')), ['HTTP 403']);
      opened.problems.failed.length = 0;
      opened.problems.console.length = 0; // Chromium logs every 4xx answer as a console error.

      await page.locator('#api-key').fill(KEY);
      await page.locator('#key-form button[type="submit"]').click();
      await ready(page);
      assert.equal(await page.locator('#banner').isHidden(), true);
      assert.ok((await page.locator('#business-table tbody tr').count()) > 0);
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('says what a 503 means when the database is unreachable', async () => {
    // A real outage: PostgreSQL at a port where nothing listens (the server starts; data routes answer 503).
    const down = await startServerProcess({ DATABASE_URL: 'postgres://postgres@127.0.0.1:9/none', DB_MIGRATE_ON_START: 'false', DB_CONNECT_TIMEOUT_MS: '500' });
    const opened = await openPage(browser);
    const { page } = opened;
    try {
      await page.goto(`${down.url}/`);
      await page.waitForSelector('#banner:not([hidden])', WAIT);
      assert.equal(await bodyState(page), 'error');
      assert.equal(await page.locator('#banner-title').textContent(), 'Database unavailable (503)');
      assert.match((await page.locator('#banner-text').textContent())!, /DATABASE_URL.*ECONNREFUSED.*tries again every 10 s/s);
      assert.match((await page.locator('[data-status="database"]').textContent())!, /^PostgreSQL · down/);
      assert.equal(await page.locator('[data-status="status"]').textContent(), 'degraded');
      assert.match((await page.locator('#updated').textContent())!, /^Not updated at/);
      await screenshot(page, 'dashboard-database-down', false);
      assert.deepEqual(opened.problems.failed.map((f) => f.replace(/^GET \S+?:\d+\//, '')).sort(), ['analytics: HTTP 503', 'health/detailed: HTTP 503']);
    } finally {
      await opened.close();
      await down.stop();
    }
  });

  it('reads well on a phone: no horizontal scrolling, charts within the screen', async () => {
    const opened = await openPage(browser, { apiKey: KEY, viewport: { width: 375, height: 740 } });
    const { page } = opened;
    try {
      await page.goto(`${keyed.url}/#business=dental-smile`);
      await ready(page);
      await page.waitForSelector('#detail:not([hidden]) #chart-intents canvas', WAIT);
      const overflow = await page.evaluate(() => ({
        page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        widest: Math.max(...[...document.querySelectorAll('.chart')].map((c) => c.getBoundingClientRect().right)),
        viewport: innerWidth,
      }));
      assert.equal(overflow.page, 0, 'no horizontal scroll');
      assert.ok(overflow.widest <= overflow.viewport, `charts fit: ${JSON.stringify(overflow)}`);
      assert.ok((await seriesInk(page, '#chart-requests')) > 20);
      await screenshot(page, 'dashboard-phone');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('on a new install shows the empty state, then the first event at the next 10 s refresh; pausing stops refreshes', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    const refreshes = async () => Number(await page.locator('body').getAttribute('data-refreshes'));
    try {
      await page.clock.install();
      await page.goto(`${fresh.url}/`);
      await page.waitForSelector('body[data-state="empty"]:not([aria-busy])', WAIT);
      assert.equal(await page.locator('#key-form').isHidden(), true, 'no key field when the service has no keys');
      assert.equal(await page.locator('#businesses').isHidden(), true);
      assert.match((await page.locator('#curl-example').textContent())!, new RegExp(`curl -X POST '${fresh.url}/track'`));
      await screenshot(page, 'dashboard-empty', false);
      // From here on, time moves only when the test says so.
      await page.clock.pauseAt(Date.now() + 1000);
      const before = await refreshes();

      const sent = await call(`${fresh.url}/track`, { method: 'POST', json: { business_id: 'first-clinic', response_time_ms: 900, tokens_used: 256 } });
      assert.equal(sent.status, 200);
      await page.clock.runFor(10_000);
      await ready(page);
      assert.equal(await refreshes(), before + 1);
      assert.equal(await page.locator('[data-kpi="requests"]').getAttribute('data-value'), '1');
      assert.equal(await page.locator('#business-table tbody tr').getAttribute('data-business'), 'first-clinic');

      await page.locator('#pause').click();
      assert.equal(await page.locator('#pause').getAttribute('aria-pressed'), 'true');
      assert.match((await page.locator('#updated').textContent())!, /^Paused/);
      await page.clock.runFor(60_000);
      assert.equal(await refreshes(), before + 1, 'no refresh while paused');
      await page.locator('#pause').click();
      await ready(page);
      assert.equal(await refreshes(), before + 2, 'resuming refreshes at once');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  describe('packaged for Lambda, through the local emulator under /default/mlops-service-lambda', { skip: skipPostgres }, () => {
    let db: TestDatabase;
    let emulator: EmulatorHandle;

    before(async () => {
      db = await createMigratedTestDatabase('dash');
      emulator = await startEmulator({
        artifact: await zip!,
        maxConcurrency: 8,
        idleReapMs: 600_000,
        environment: { DATABASE_URL: db.url, LOG_LEVEL: 'warn', POWERTOOLS_METRICS_DISABLED: 'true' },
        log: () => {},
      });
      await sendEvents(emulator.baseUrl, events(120, 43));
    });
    after(async () => {
      await emulator?.stop();
      await db?.drop();
    });

    it('keeps the page out of a cold start: the dashboard is a chunk that index.mjs does not import statically', async () => {
      const dir = join(dirname(await zip!), 'lambda');
      const chunk = readdirSync(join(dir, 'chunks')).find((f) => /^dashboard-.*\.mjs$/.test(f));
      assert.ok(chunk, 'a dashboard chunk exists');
      assert.match(readFileSync(join(dir, 'chunks', chunk), 'utf8'), /MlopsCharts/, 'it embeds the browser files');
      // Every module index.mjs loads before it can answer, following static imports only.
      const loaded = new Set<string>();
      const visit = (file: string) => {
        if (loaded.has(file)) return;
        loaded.add(file);
        const code = readFileSync(file, 'utf8');
        for (const m of code.matchAll(/(?:^|[;}\s])import\s*(?:[\w${}\s,*]+from\s*)?["'](\.[^"']+)["']/g)) visit(join(dirname(file), m[1]!));
      };
      visit(join(dir, 'index.mjs'));
      assert.ok(loaded.size > 1, 'static imports were followed');
      assert.ok(![...loaded].some((f) => f.includes('dashboard-')), `statically loaded: ${[...loaded].map((f) => f.slice(dir.length))}`);
      assert.ok([...loaded].some((f) => /import\("\.\/(chunks\/)?dashboard-/.test(readFileSync(f, 'utf8'))), 'it is imported on demand');
    });

    for (const slash of ['/', '']) {
      it(`works at ${slash ? 'the prefix with a trailing slash' : 'the prefix without a trailing slash'}`, async () => {
        const expected = await expectedFromApi(emulator.baseUrl);
        const opened = await openPage(browser);
        const { page } = opened;
        const urls: string[] = [];
        page.on('request', (r) => urls.push(r.url()));
        try {
          await page.goto(`${emulator.baseUrl}${slash}`);
          await ready(page);
          const prefix = new URL(emulator.baseUrl).pathname;
          assert.ok(urls.length >= 10);
          for (const url of urls) assert.ok(new URL(url).pathname.startsWith(prefix), `${url} stays under ${prefix}`);
          assert.match((await page.locator('[data-status="runtime"]').textContent())!, /^AWS Lambda/);
          const kpis = await readKpis(page, '#kpis');
          assert.equal(Number(kpis.requests!.value), expected.kpis.requests);
          assert.equal(Number(kpis.p95!.value), expected.kpis.p95);
          assert.ok((await seriesInk(page, '#chart-latency')) > 1000);
          await page.locator('#business-table tbody tr button').first().click();
          await page.waitForSelector('#detail:not([hidden]) #chart-intents canvas', WAIT);
          assert.ok((await seriesInk(page, '#chart-models')) > 20);
          if (slash) await screenshot(page, 'dashboard-lambda');
          assertClean(opened);
        } finally {
          await opened.close();
        }
      });
    }
  });
});
