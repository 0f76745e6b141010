// Human-readable tables of a bench result (the default output of `npm run bench`).
import type { BenchResult, EndpointResult } from './bench.ts';
import type { LatencySummary } from './stats.ts';

export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 100) return `${v.toFixed(0)} ms`;
  if (v >= 10) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r, i) => {
      const line = r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
      return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

function errorsText(e: EndpointResult): string {
  const entries = Object.entries(e.counts.errors);
  return entries.length ? entries.map(([k, n]) => `${k}×${n}`).join(' ') : '0';
}

const row = (label: string, s: LatencySummary): string[] => [label, String(s.n), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), ms(s.mean)];

export function formatBench(result: BenchResult): string {
  const out: string[] = [];
  const s = result.settings;
  out.push(
    `Bench on ${result.machine.cpus} × ${result.machine.cpuModel}, Node ${result.machine.node}: ${s.requests} measured requests per endpoint ` +
      `at concurrency ${s.concurrency} after ${s.warmup} warm-up requests; percentiles are ${result.percentileMethod.split(':')[0]}.`,
  );
  for (const t of result.targets) {
    out.push('', `${t.name}  ${t.url}`, `  cold starts: ${t.cold.note}`);
    const rows: string[][] = [['', 'n', 'p50', 'p90', 'p99', 'max', 'mean']];
    for (const e of t.endpoints) {
      const name = `${e.method} ${e.path}`;
      rows.push(row(`${name} warm`, e.warm));
      if (e.warmServer.n > 0) rows.push(row(`  of which in the app (Server-Timing)`, e.warmServer));
      if (t.cold.mode !== 'none') rows.push(row(`${name} cold`, e.cold));
    }
    out.push(table(rows).replace(/^/gm, '  '));
    for (const e of t.endpoints) {
      const notes = [
        `${e.throughputRps === null ? '—' : e.throughputRps.toLocaleString('en-US')} req/s`,
        `errors ${errorsText(e)}`,
        e.counts.coldInLoad ? `${e.counts.coldInLoad} cold start(s) during the load phase, left out of warm` : '',
        e.counts.coldMissed ? `${e.counts.coldMissed} cold sample(s) answered warm, left out of cold` : '',
        e.counts.noMarker ? `${e.counts.noMarker} answer(s) without X-Cold-Start` : '',
      ].filter(Boolean);
      out.push(`  ${`${e.method} ${e.path}`.padEnd(13)} ${notes.join(', ')}`);
      const firstError = e.samples.find((x) => x.error)?.error;
      if (firstError) out.push(`    first error: ${firstError.replace(/\s+/g, ' ').slice(0, 160)}`);
    }
  }
  return `${out.join('\n')}\n`;
}
