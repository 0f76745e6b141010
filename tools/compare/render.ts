/**
 * Writes a CompareReport as reports/compare-<stamp>.{json,md,html}. The HTML is self-contained:
 * uPlot, the dashboard's chart kit (src/web/charts.js + charts.css, global MlopsCharts) and the
 * chart data are inlined, so it opens from a file or an e-mail with no network, and its charts
 * look like the dashboard's.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENDPOINTS, type EndpointResult, type TargetResult } from '../bench/bench.ts';
import type { LatencySummary } from '../bench/stats.ts';
import { API_LABELS, API_TYPES, fileStamp, fmtCount, fmtMoney, fmtMs, type CompareReport } from './report.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ChartAssets {
  uplotJs: string;
  uplotCss: string;
  /** null when src/web/charts.js is not there yet: the report then shows tables only, and says so. */
  chartsJs: string | null;
  chartsCss: string | null;
  missing: string[];
}

export function loadChartAssets(root = ROOT): ChartAssets {
  const read = (p: string) => (existsSync(join(root, p)) ? readFileSync(join(root, p), 'utf8') : null);
  const files = {
    uplotJs: 'node_modules/uplot/dist/uPlot.iife.min.js',
    uplotCss: 'node_modules/uplot/dist/uPlot.min.css',
    chartsJs: 'src/web/charts.js',
    chartsCss: 'src/web/charts.css',
  };
  const uplotJs = read(files.uplotJs);
  const uplotCss = read(files.uplotCss);
  if (uplotJs === null || uplotCss === null) throw new Error(`uPlot not found under ${join(root, 'node_modules/uplot')}: run npm install`);
  const chartsJs = read(files.chartsJs);
  const chartsCss = read(files.chartsCss);
  const missing = [chartsJs === null ? files.chartsJs : null, chartsCss === null ? files.chartsCss : null].filter((x): x is string => x !== null);
  return { uplotJs, uplotCss, chartsJs, chartsCss, missing };
}

// ---------------------------------------------------------------------------------------------
// Shared table rows

interface Row {
  target: string;
  endpoint: string;
  kind: string;
  s: LatencySummary;
  extra: string;
}

function latencyRows(r: CompareReport): Row[] {
  const rows: Row[] = [];
  for (const t of r.bench.targets) {
    for (const e of t.endpoints) {
      const name = `${e.method} ${e.path}`;
      rows.push({ target: t.name, endpoint: name, kind: 'warm', s: e.warm, extra: throughputText(e) });
      rows.push({ target: t.name, endpoint: name, kind: '  in the app', s: e.warmServer, extra: '' });
      if (e.cold.n > 0 || t.cold.mode !== 'none') rows.push({ target: t.name, endpoint: name, kind: 'cold', s: e.cold, extra: coldText(t, e) });
    }
  }
  return rows;
}

function throughputText(e: EndpointResult): string {
  const errors = Object.entries(e.counts.errors)
    .map(([k, n]) => `${k}×${n}`)
    .join(' ');
  return `${e.throughputRps === null ? '—' : Math.round(e.throughputRps).toLocaleString('en-US')} req/s${errors ? `; errors ${errors}` : ''}${e.counts.coldInLoad ? `; ${e.counts.coldInLoad} cold during load` : ''}`;
}

function coldText(t: TargetResult, e: EndpointResult): string {
  if (t.cold.mode === 'none') return t.cold.note;
  return e.counts.coldMissed ? `${e.counts.coldMissed} sample(s) came back warm` : '';
}

const cells = (s: LatencySummary) => [String(s.n), fmtMs(s.p50), fmtMs(s.p90), fmtMs(s.p99), fmtMs(s.max), fmtMs(s.mean)];

function costHeader(r: CompareReport): string[] {
  return ['requests/day', ...API_TYPES.map((a) => API_LABELS[a]), `EC2 ${r.cost.ec2Input.instanceType}`];
}

function costRows(r: CompareReport): string[][] {
  return r.cost.levels.map((l) => [l.requestsPerDay.toLocaleString('en-US'), ...API_TYPES.map((a) => fmtMoney(l.lambda[a])), fmtMoney(r.cost.ec2Monthly)]);
}

function breakEvenRows(r: CompareReport): string[][] {
  return r.cost.breakEven.map((b) => [
    API_LABELS[b.apiType],
    b.status === 'crosses'
      ? `${Math.round(b.requestsPerDay!).toLocaleString('en-US')} requests/day (${fmtCount(b.requestsPerMonth!)}/month)`
      : b.status === 'ec2-cheaper-throughout'
        ? 'never: EC2 is cheaper at any traffic'
        : `never up to ${fmtCount(b.maxRequestsPerDay)}/day: Lambda is cheaper throughout`,
  ]);
}

function lambdaRows(r: CompareReport): string[][] {
  const rows = (Object.entries(r.lambdaMeasured.endpoints) as [keyof typeof ENDPOINTS, NonNullable<CompareReport['lambdaMeasured']['endpoints']['health']>][]).map(
    ([k, f]) => {
      const pm = r.cost.perMillion.find((p) => p.endpoint === k);
      return [
        `${ENDPOINTS[k].method} ${ENDPOINTS[k].path}`,
        String(f.n),
        fmtMs(f.meanDurationMs),
        fmtMs(f.meanBilledMs),
        fmtMs(f.billedP99),
        f.maxMemoryUsedMb === null ? '—' : `${f.maxMemoryUsedMb} MB`,
        pm ? fmtMoney(pm.httpApiPerMillion) : '—',
      ];
    },
  );
  if (r.lambdaMeasured.warmer) rows.push(['warm-up ping (Invoke API)', String(r.lambdaMeasured.warmer.n), '—', fmtMs(r.lambdaMeasured.warmer.meanBilledMs), '—', '—', '—']);
  return rows;
}

const LAMBDA_HEADER = ['invocation', 'n', 'mean Duration', 'mean Billed', 'p99 Billed', 'Max Memory Used', 'per 1M with HTTP API'];

/** Init Duration is billed once per cold start, on top of that request's Duration: its own sentence, not a table row. */
function initText(r: CompareReport): string {
  const i = r.lambdaMeasured.initDurationMs;
  const out = [
    i.n > 0
      ? `Init Duration of the ${i.n} cold start(s): median ${fmtMs(i.p50)}, max ${fmtMs(i.max)}, billed on top of the first request's Duration. The table counts warm invocations only.`
      : 'The table counts warm invocations only.',
  ];
  // Billing starts when the runtime takes the event and ends when it asks for the next one, so it
  // covers more than the app's own time: worth saying, because it is what the bill is made of.
  const track = r.lambdaMeasured.endpoints.track;
  const app = r.bench.targets.find((t) => t.name === 'lambda')?.endpoints.find((e) => e.endpoint === 'track')?.warmServer.mean ?? null;
  if (track?.meanDurationMs != null && app !== null && track.meanDurationMs > app) {
    out.push(
      `POST /track's mean Duration (${fmtMs(track.meanDurationMs)}) exceeds the app's own time for it (${fmtMs(app)}): the rest is the runtime taking the event, converting it to a request and the response back, all billed.`,
    );
  }
  out.push('"per 1M" is the Lambda + HTTP API price of a million such requests (requests, GB-s, gateway, logs).');
  return out.join(' ');
}

// ---------------------------------------------------------------------------------------------
// Markdown

function mdTable(header: string[], rows: string[][], rightFrom = 1, rightTo = Infinity): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map((_, i) => (i >= rightFrom && i <= rightTo ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

export function renderMarkdown(r: CompareReport, files: { html: string; json: string }): string {
  const out: string[] = [];
  out.push(`# mlops-service: server vs Lambda (${r.mode === 'local' ? 'local' : 'deployed'})`, '');
  out.push(`${r.createdAt.replace('T', ' ').slice(0, 19)} UTC, ${r.machine.cpus} × ${r.machine.cpuModel}. Charts: [${files.html}](${files.html}); every raw sample: [${files.json}](${files.json}).`, '');
  out.push('## Verdict', '', ...r.verdict.flatMap((p) => [p, '']));
  out.push('## Latency', '');
  out.push(
    mdTable(
      ['target', 'endpoint', '', 'n', 'p50', 'p90', 'p99', 'max', 'mean', 'throughput, errors, notes'],
      latencyRows(r).map((x) => [x.target, x.endpoint, x.kind.trim(), ...cells(x.s), x.extra]),
      3,
      8,
    ),
    '',
    '"in the app" is the service\'s own Server-Timing for the same warm requests; the rest of the client-seen time is spent outside the handler.',
    '',
  );
  if (Object.keys(r.lambdaMeasured.endpoints).length) {
    out.push('## Lambda invocations (REPORT lines)', '', mdTable(LAMBDA_HEADER, lambdaRows(r)), '', initText(r), '');
  }
  out.push('## Cost per month', '', `Lambda duration: ${r.cost.durationSource}.`, '', mdTable(costHeader(r), costRows(r)), '');
  out.push(`Break-even against EC2 ${r.cost.ec2Input.instanceType} (${fmtMoney(r.cost.ec2Monthly)}/month):`, '', mdTable(['Lambda option', 'break-even'], breakEvenRows(r), 9), '');
  out.push('## Assumptions', '', ...r.assumptions.map((a) => `- ${a}`), '');
  if (r.notes.length) out.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// HTML

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** Inline code must not close its own element early. */
const inlineScript = (js: string) => js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
const inlineStyle = (css: string) => css.replace(/<\/(style)/gi, '<\\/$1');

function htmlTable(header: string[], rows: string[][], cls = ''): string {
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const REPORT_CSS = `
:root { color-scheme: light; --fg: #1f2430; --muted: #5b6272; --line: #dfe3ea; --bg: #ffffff; --panel: #f6f8fb; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 32px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.sub { color: var(--muted); margin: 0; }
.verdict { background: var(--panel); border: 1px solid var(--line); border-left: 4px solid var(--accent); border-radius: 6px; padding: 4px 18px; }
.grid { display: grid; grid-template-columns: repeat(6, 1fr); gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 12px; background: var(--bg); min-width: 0; grid-column: span 3; }
figure.wide { grid-column: 1 / -1; }
figure.third { grid-column: span 2; }
figcaption { color: var(--muted); font-size: 0.85rem; margin-top: 8px; }
.chart { width: 100%; }
.chart-missing { color: #9a3412; background: #fff7ed; border: 1px solid #fed7aa; padding: 10px 14px; border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 0.88rem; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child, .left td, .left th { text-align: left; }
.latency td:last-child { white-space: normal; text-align: left; color: var(--muted); }
.latency td:nth-child(2), .latency td:nth-child(3) { text-align: left; }
ul.assumptions li { margin-bottom: 6px; }
footer { color: var(--muted); font-size: 0.85rem; margin-top: 32px; }
@media (max-width: 900px) { figure, figure.third { grid-column: 1 / -1; } }
@media (max-width: 600px) { th, td { white-space: normal; } }
`;

const RENDER_JS = `
(function () {
  var charts = JSON.parse(document.getElementById('report-charts').textContent);
  for (var i = 0; i < charts.length; i++) {
    var c = charts[i];
    var el = document.getElementById('chart-' + c.id);
    if (!el) continue;
    if (typeof MlopsCharts === 'undefined' || typeof MlopsCharts[c.kind] !== 'function') {
      el.innerHTML = '<p class="chart-missing">Chart not drawn: the chart kit (src/web/charts.js) was not available when this report was written. The tables below hold the same figures.</p>';
      continue;
    }
    try { MlopsCharts[c.kind](el, c.spec); }
    catch (err) { el.innerHTML = '<p class="chart-missing">Chart failed: ' + String(err && err.message || err).replace(/</g, '&lt;') + '</p>'; }
  }
})();
`;

export function renderHtml(r: CompareReport, assets: ChartAssets, files: { json: string; md: string }): string {
  const title = `Server vs Lambda — ${r.createdAt.slice(0, 10)}`;
  // Histograms three to a row; bar charts with many labels and the cost curve full width.
  const size = (id: string) => (id.startsWith('warm-histogram-') ? ' class="third"' : ' class="wide"');
  const figures = r.charts
    .map(
      (c) =>
        `<figure${size(c.id)} id="figure-${c.id}"><div class="chart" id="chart-${c.id}" role="img" aria-label="${escapeHtml(
          String(c.spec.title ?? c.id),
        )}"></div><figcaption>${escapeHtml(c.caption)}</figcaption></figure>`,
    )
    .join('\n');
  const missing = assets.missing.length
    ? `<p class="chart-missing">${escapeHtml(assets.missing.join(' and '))} did not exist when this report was written, so its charts are not drawn; every figure is in the tables.</p>`
    : '';
  const latency = latencyRows(r).map((x) => [x.target, x.endpoint, x.kind, ...cells(x.s), x.extra]);
  const lambdaTable = Object.keys(r.lambdaMeasured.endpoints).length
    ? `<h2>Lambda invocations (REPORT lines)</h2>${htmlTable(LAMBDA_HEADER, lambdaRows(r))}<p class="sub">${escapeHtml(initText(r))}</p>`
    : '';
  // JSON inside <script type="application/json">: only "</" could end it early.
  const chartData = JSON.stringify(r.charts).replace(/<\//g, '<\\/');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${inlineStyle(assets.uplotCss)}</style>
${assets.chartsCss !== null ? `<style>${inlineStyle(assets.chartsCss)}</style>` : ''}
<style>${REPORT_CSS}</style>
</head>
<body>
<main>
<header>
<h1>mlops-service: server vs Lambda</h1>
<p class="sub">${escapeHtml(`${r.mode === 'local' ? 'Local run (Node server + local Lambda emulator)' : 'Deployed targets'} · ${r.createdAt.replace('T', ' ').slice(0, 16)} UTC · ${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.machine.node} · prices ${r.cost.prices.region} ${r.cost.prices.date}`)}</p>
</header>
<h2>Verdict</h2>
<section class="verdict">${r.verdict.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}</section>
<h2>Charts</h2>
${missing}
<section id="charts" class="grid">
${figures}
</section>
<h2>Latency</h2>
${htmlTable(['target', 'endpoint', '', 'n', 'p50', 'p90', 'p99', 'max', 'mean', 'throughput, errors, notes'], latency, 'latency')}
<p class="sub">“in the app” is the service's own Server-Timing for the same warm requests. Percentiles are nearest-rank over 2xx answers.</p>
${lambdaTable}
<h2>Cost per month</h2>
<p>Lambda duration: ${escapeHtml(r.cost.durationSource)}.</p>
${htmlTable(costHeader(r), costRows(r))}
<p>Break-even against EC2 ${escapeHtml(r.cost.ec2Input.instanceType)} (${escapeHtml(fmtMoney(r.cost.ec2Monthly))}/month):</p>
${htmlTable(['Lambda option', 'break-even'], breakEvenRows(r), 'left')}
<h2>Assumptions</h2>
<ul class="assumptions">${r.assumptions.map((a) => `<li>${escapeHtml(a)}</li>`).join('\n')}</ul>
${r.notes.length ? `<h2>Notes</h2><ul>${r.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}
<footer>Raw samples and every figure: ${escapeHtml(files.json)} · the same tables in Markdown: ${escapeHtml(files.md)} · written by npm run compare${r.mode === 'local' ? ':local' : ''}.</footer>
</main>
<script>${inlineScript(assets.uplotJs)}</script>
${assets.chartsJs !== null ? `<script>${inlineScript(assets.chartsJs)}</script>` : ''}
<script type="application/json" id="report-charts">${chartData}</script>
<script>${RENDER_JS}</script>
</body>
</html>
`;
}

export interface WrittenReport {
  json: string;
  md: string;
  html: string;
  chartsMissing: string[];
}

export function writeReport(r: CompareReport, outDir: string, assets: ChartAssets = loadChartAssets()): WrittenReport {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `compare-${fileStamp(new Date(r.createdAt))}`);
  const files = { json: `${base}.json`, md: `${base}.md`, html: `${base}.html` };
  const names = { json: files.json.split('/').pop()!, md: files.md.split('/').pop()!, html: files.html.split('/').pop()! };
  writeFileSync(files.json, `${JSON.stringify(r)}\n`);
  writeFileSync(files.md, renderMarkdown(r, names));
  writeFileSync(files.html, renderHtml(r, assets, names));
  return { ...files, chartsMissing: assets.missing };
}
