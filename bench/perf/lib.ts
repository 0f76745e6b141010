/** Shared pieces of the performance benchmarks: statistics, tables, a throwaway database. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createThrowawayDatabase, type ThrowawayDatabase } from '../../tools/shared/throwaway-database.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export const median = (values: readonly number[]) => quantile(values, 0.5);

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu.trim()}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

export interface Verdict {
  name: string;
  measured: string;
  target: string;
  met: boolean;
}

export function printVerdicts(verdicts: Verdict[]): void {
  console.log(table(['target', 'measured', 'goal', 'met'], verdicts.map((v) => [v.name, v.measured, v.target, v.met ? 'yes' : 'NO'])));
}

const adminUrl = () => process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A throwaway database on the local PostgreSQL server (never a remote one). */
export function createBenchDatabase(label: string): Promise<ThrowawayDatabase> {
  const admin = adminUrl();
  const host = new URL(admin).hostname;
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) throw new Error(`benchmarks only use a local PostgreSQL, not ${host}`);
  return createThrowawayDatabase(admin, `mlops_bench_${label}`);
}

/** Builds the Lambda package (dist/) unless it is fresh enough to reuse. */
export function packageLambda(outDir?: string): void {
  execFileSync(process.execPath, ['--import', 'tsx', 'scripts/package-lambda.ts', '--lambda-only', '--quiet', ...(outDir ? ['--out-dir', outDir] : [])], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** A process's resident memory (VmRSS) in MB, from /proc; throws when the process is gone. */
export function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
  return kb / 1024;
}
