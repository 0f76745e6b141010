/**
 * Server memory right after start: the resident set (VmRSS) of the server process once it has
 * logged "listening on" and settled for a moment, on PostgreSQL and on PGlite (a migrated, empty
 * folder), for `npm start` (src/ run by tsx: the loader is part of that process) and for the
 * packaged dist/server/server.mjs as EC2 runs it. Each start is repeated; medians and extremes.
 *
 *   npm run bench:perf -- memory [--memory-runs 3]
 *
 * Targets (issue 14), on `npm start`: PostgreSQL ≤ 200 MB; PGlite ≤ 350 MB.
 */
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { freshPgliteDir } from '../../tools/shared/pglite-template.ts';
import { startService } from '../../tools/shared/service-process.ts';
import { spread, type Spread } from './cold-start.ts';
import { createBenchDatabase, printVerdicts, rssMb, table } from './lib.ts';

export const MEMORY_TARGETS_MB = { postgres: 200, pglite: 350 } as const;
/** After the ready line: lets start-up work that the event loop still runs (timers, GC) finish. */
const SETTLE_MS = 500;


export type Entry = 'source' | 'bundle';
export type Backend = 'postgres' | 'pglite';

export interface MemoryRow {
  entry: Entry;
  backend: Backend;
  rssMb: Spread;
  startupMs: Spread;
  samplesMb: number[];
}

export interface MemoryResult {
  runs: number;
  settleMs: number;
  rows: MemoryRow[];
}

async function measure(entry: Entry, backend: Backend, databaseUrl: string): Promise<{ rss: number; startupMs: number }> {
  const dir = backend === 'pglite' ? await freshPgliteDir() : undefined;
  try {
    const server = await startService(entry, backend === 'postgres' ? { DATABASE_URL: databaseUrl } : { DATA_DIR: dir! }, { keepOutput: 10_000, timeoutMs: 120_000 });
    try {
      await sleep(SETTLE_MS);
      return { rss: rssMb(server.child.pid!), startupMs: server.startupMs };
    } finally {
      await server.stop();
    }
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

export async function memory(runs: number, entries: Entry[] = ['source', 'bundle'], backends: Backend[] = ['postgres', 'pglite']): Promise<MemoryResult> {
  const db = await createBenchDatabase('mem');
  try {
    const rows: MemoryRow[] = [];
    for (const entry of entries) {
      for (const backend of backends) {
        const samples = [];
        for (let i = 0; i < runs; i++) samples.push(await measure(entry, backend, db.url));
        rows.push({
          entry,
          backend,
          rssMb: spread(samples.map((s) => s.rss)),
          startupMs: spread(samples.map((s) => s.startupMs)),
          samplesMb: samples.map((s) => Math.round(s.rss * 10) / 10),
        });
      }
    }
    return { runs, settleMs: SETTLE_MS, rows };
  } finally {
    await db.drop();
  }
}

const ENTRY_LABEL: Record<Entry, string> = { source: 'npm start (tsx src/)', bundle: 'dist/server/server.mjs' };

export function printMemory(r: MemoryResult): boolean {
  console.log(`\nServer RSS right after start (ready line + ${r.settleMs} ms), ${r.runs} starts each; median (min–max)\n`);
  console.log(
    table(
      ['server', 'database', 'RSS MB', 'start-up ms'],
      r.rows.map((x) => [ENTRY_LABEL[x.entry], x.backend, `${x.rssMb.median.toFixed(0)} (${x.rssMb.min.toFixed(0)}–${x.rssMb.max.toFixed(0)})`, x.startupMs.median.toFixed(0)]),
    ),
  );
  console.log('');
  const verdicts = r.rows
    .filter((x) => x.entry === 'source' || !r.rows.some((y) => y.entry === 'source'))
    .map((x) => ({
      name: `server RSS after start, ${x.backend === 'postgres' ? 'PostgreSQL' : 'PGlite'} (${ENTRY_LABEL[x.entry]})`,
      measured: `${x.rssMb.median.toFixed(0)} MB`,
      target: `≤ ${MEMORY_TARGETS_MB[x.backend]} MB`,
      met: x.rssMb.median <= MEMORY_TARGETS_MB[x.backend],
    }));
  printVerdicts(verdicts);
  return verdicts.every((v) => v.met);
}
