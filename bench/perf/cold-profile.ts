/**
 * Where a cold start's CPU goes, by source module: the packaged handler is built unminified (each
 * module marked by its path, as esbuild does), run cold N times under `--cpu-prof` on the chosen
 * Node beside the hello-world handler, and every profile sample is charged to the source module
 * of its nearest bundled frame (native calls to their caller), to Node's own modules, or to the
 * garbage collector. What the packaged handler adds over hello-world is the difference.
 *
 *   npm run bench:perf -- cold-profile [--node 22] [--profile-runs 10]
 *
 * Profiles a cold `GET /health` and a cold first `POST /track` (connect and insert included, on a
 * throwaway database of the local PostgreSQL).
 *
 * Sampled profiles inflate times (the profiler itself runs): read shares and differences, not
 * absolute milliseconds. Wall-time figures come from the cold-start benchmark.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeRuntime } from '../../tools/shared/node-runtime.ts';
import { coldStartEvent, lambdaEnv } from './cold-start.ts';
import { openPostgresStore } from '../../src/storage/postgres.ts';
import { createBenchDatabase, ROOT, table } from './lib.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
  positionTicks?: { line: number; ticks: number }[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Maps a line of a bundled chunk to its source module, from esbuild's `// path` markers. */
class ModuleMap {
  readonly #byFile = new Map<string, { line: number; module: string }[]>();

  markers(file: string): { line: number; module: string }[] {
    let m = this.#byFile.get(file);
    if (!m) {
      m = [];
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((text, i) => {
        const found = /^\/\/ ((?:src|node_modules)\/\S+)$/.exec(text);
        if (found) m!.push({ line: i + 1, module: found[1]! });
      });
      this.#byFile.set(file, m);
    }
    return m;
  }

  /** `line` is 1-based. */
  moduleAt(file: string, line: number): string {
    let found = '(chunk glue)';
    for (const marker of this.markers(file)) {
      if (marker.line > line) break;
      found = marker.module;
    }
    // node_modules/<pkg>/… → the package; src/… stays a file.
    const pkg = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(found);
    return pkg ? `${pkg[1]} (package)` : found;
  }
}

function nodeCategory(url: string): string {
  if (/^node:internal\/modules\//.test(url)) return 'Node: module loader (read, compile, link; built-ins imported)';
  if (/^node:internal\/(bootstrap|main|process)\//.test(url) || url === 'node:internal/per_context/primordials') return 'Node: bootstrap, built-in module loading';
  return `Node: ${url.replace(/^node:(internal\/)?/, '')}`;
}

export const PHASES = ['node start', 'module load', 'first request', 'exit'] as const;
export type Phase = (typeof PHASES)[number];

/**
 * Milliseconds of profile samples per phase and category, for one profile. `marksUs` are the
 * harness's monotonic marks (load start, loaded, answered), on the clock of the profile's timestamps.
 */
export function chargeSamples(profile: CpuProfile, bundleDir: string, map: ModuleMap, marksUs: number[]): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const bundlePrefix = `file://${bundleDir}`;
  const categoryOf = new Map<number, (line?: number) => string>();
  const category = (id: number): ((line?: number) => string) => {
    let found = categoryOf.get(id);
    if (found) return found;
    const node = byId.get(id)!;
    const name = node.callFrame.functionName;
    // Charged to the nearest frame that is either bundled code (its source module) or Node's
    // module loader (which also loads the built-ins the bundle imports); failing both, to the
    // nearest frame with a source. Native calls and Node internals thus count for their caller.
    let owner: ProfileNode | undefined;
    let fallback: ProfileNode | undefined;
    for (let at: ProfileNode | undefined = node; at; at = parent.has(at.id) ? byId.get(parent.get(at.id)!) : undefined) {
      const url = at.callFrame.url;
      if (url && !fallback) fallback = at;
      if (url.startsWith(bundlePrefix) || url.startsWith('node:internal/modules/')) {
        owner = at;
        break;
      }
    }
    const at = owner ?? fallback;
    if (name === '(garbage collector)') found = () => 'V8: garbage collector';
    else if (name === '(program)' || name === '(idle)' || !at) found = () => 'V8/native, no JS frame';
    else {
      const url = at.callFrame.url;
      const own = at === node;
      const defLine = at.callFrame.lineNumber + 1;
      if (url.startsWith(bundlePrefix)) {
        const file = fileURLToPath(url);
        found = (line) => map.moduleAt(file, own && line !== undefined ? line : defLine);
      } else if (url.startsWith('node:')) {
        const c = nodeCategory(url);
        found = () => c;
      } else {
        const c = `other: ${url.replace(/^file:\/\//, '')}`;
        found = () => c;
      }
    }
    categoryOf.set(id, found);
    return found;
  };
  // Line-level ticks (top-level module code is one function per chunk, so lines tell the modules
  // apart): each sample of a node takes the next line from its positionTicks, in proportion.
  const lineQueue = new Map<number, number[]>();
  for (const n of profile.nodes) {
    if (n.positionTicks?.length) lineQueue.set(n.id, n.positionTicks.flatMap((t) => Array<number>(t.ticks).fill(t.line)));
  }
  const phaseAt = (us: number): Phase => (us < marksUs[0]! ? 'node start' : us < marksUs[1]! ? 'module load' : us < marksUs[2]! ? 'first request' : 'exit');
  const out = new Map<string, number>();
  let t = (profile as CpuProfile & { startTime: number }).startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    const line = lineQueue.get(id)?.pop();
    const key = `${phaseAt(t)}\t${category(id)(line)}`;
    out.set(key, (out.get(key) ?? 0) + dt / 1000);
  });
  return out;
}

/** ms per cold start, averaged over the runs (profiler overhead included), by phase and category. */
export type PhaseTable = Record<Phase, Record<string, number>>;

export interface ColdProfileResult {
  node: { path: string; version: string };
  runs: number;
  hello: PhaseTable;
  health: PhaseTable;
  /** A cold first POST /track (connect + insert). */
  track: PhaseTable;
}

function profileRuns(node: NodeRuntime, module: string, event: string, runs: number, bundleDir: string, env: Record<string, string> = {}): PhaseTable {
  const map = new ModuleMap();
  const totals = new Map<string, number>();
  const harness = join(ROOT, 'bench/perf/harness/invoke-once.mjs');
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'mlops-prof-'));
    try {
      const r = spawnSync(node.path, ['--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', dir, harness, module, 'handler', event], {
        env: lambdaEnv(env),
        encoding: 'utf8',
      });
      if (r.status !== 0 || !/HARNESS .*"status":200/.test(r.stdout)) throw new Error(`profiled cold start failed: ${r.stderr || r.stdout}`);
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!;
      const marksUs = (JSON.parse(/\nHARNESS (.*)\n/.exec(r.stdout)![1]!) as { marksUs: number[] }).marksUs;
      for (const [k, ms] of chargeSamples(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, bundleDir, map, marksUs)) {
        totals.set(k, (totals.get(k) ?? 0) + ms);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const table = Object.fromEntries(PHASES.map((p) => [p, {} as Record<string, number>])) as PhaseTable;
  for (const [key, ms] of totals) {
    const [phase, category] = key.split('\t') as [Phase, string];
    table[phase][category] = ms / runs;
  }
  return table;
}

export async function coldProfile(runs: number, node: NodeRuntime): Promise<ColdProfileResult> {
  const out = mkdtempSync(join(tmpdir(), 'mlops-unminified-'));
  const db = await createBenchDatabase('prof');
  try {
    const store = openPostgresStore({ url: db.url, poolMax: 1, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
    await store.migrate();
    await store.close();
    execFileSync(process.execPath, ['--import', 'tsx', 'scripts/package-lambda.ts', '--lambda-only', '--no-minify', '--quiet', '--out-dir', out], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const bundleDir = join(out, 'lambda');
    const event = join(out, 'health.json');
    writeFileSync(event, JSON.stringify(coldStartEvent('GET', '/health')));
    const hello = profileRuns(node, join(ROOT, 'bench/perf/harness/hello.mjs'), event, runs, bundleDir);
    const health = profileRuns(node, join(bundleDir, 'index.mjs'), event, runs, bundleDir);
    const trackEvent = join(out, 'track.json');
    writeFileSync(trackEvent, JSON.stringify(coldStartEvent('POST', '/track', { business_id: 'bench', response_time_ms: 420, tokens_used: 300 })));
    const track = profileRuns(node, join(bundleDir, 'index.mjs'), trackEvent, runs, bundleDir, { DATABASE_URL: db.url });
    return { node: { path: node.path, version: node.version }, runs, hello, health, track };
  } finally {
    rmSync(out, { recursive: true, force: true });
    await db.drop();
  }
}

const total = (t: PhaseTable, category: string) => PHASES.reduce((a, p) => a + (t[p][category] ?? 0), 0);

export function printColdProfile(r: ColdProfileResult, top = 25): void {
  for (const [name, label] of [['health', 'GET /health'], ['track', 'first POST /track (connect + insert)']] as const) {
    const t = r[name];
    const keys = [...new Set(PHASES.flatMap((p) => [...Object.keys(r.hello[p]), ...Object.keys(t[p])]))];
    const rows = keys
      .map((k) => ({ k, hello: total(r.hello, k), it: total(t, k), load: t['module load'][k] ?? 0, first: t['first request'][k] ?? 0 }))
      .sort((a, b) => b.it - b.hello - (a.it - a.hello));
    const sum = (f: (x: (typeof rows)[number]) => number) => rows.reduce((a, x) => a + f(x), 0);
    console.log(`\nCold ${label} CPU profile on Node ${r.node.version}, ${r.runs} runs each, ms per cold start (sampled every 100 µs; profiler overhead included)\n`);
    console.log(
      table(
        ['charged to', 'hello-world', label, 'of which: module load', 'first request', 'added'],
        [
          ...rows.slice(0, top).map((x) => [x.k, x.hello.toFixed(1), x.it.toFixed(1), x.load.toFixed(1), x.first.toFixed(1), (x.it - x.hello).toFixed(1)]),
          ['(all)', sum((x) => x.hello).toFixed(1), sum((x) => x.it).toFixed(1), sum((x) => x.load).toFixed(1), sum((x) => x.first).toFixed(1), sum((x) => x.it - x.hello).toFixed(1)],
        ],
      ),
    );
  }
}
