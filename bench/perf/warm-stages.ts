/**
 * Where a warm server's time goes, per request: `GET /health` on the service as `npm start` runs
 * it (src/ with tsx, on the local PostgreSQL, which /health never touches) and `POST /track` over
 * a no-op store (the service's own app and Node adapter, bench/perf/harness/no-store-server.ts),
 * beside a bare node:http server, Hono alone, and bare node:http answering with the service's
 * shape (its headers and body sizes; for POST, reading and parsing the body: harness/shaped-server.mjs),
 * the floor below which no framework code can take a request of that shape.
 *
 * 1. CPU per request: the server's own CPU time (user + system, all threads, /proc/<pid>/stat)
 *    over a wrk run, divided by the requests answered. Unlike requests per second it barely
 *    moves when other work shares the machine, so it is what the stages are scaled to.
 * 2. Stages: the same servers under the same load with `--cpu-prof`; every sample is charged to
 *    a stage by the innermost frame that belongs to one (Node's generic helpers and native calls
 *    count for their caller), and each stage's share of the profile is applied to (1).
 *
 *   npm run bench:perf -- warm-stages [--seconds 5] [--repeats 5]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_READY, startProcess, type StartedProcess } from '../../tools/shared/service-process.ts';
import { spread, type Spread } from './cold-start.ts';
import { createBenchDatabase, machine, ROOT, table } from './lib.ts';
import { runWrk, type WrkResult } from './throughput.ts';

const CLOCK_TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const TRACK_SCRIPT = join(ROOT, 'bench/perf/harness/post-track.lua');
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** CPU seconds (user + system, every thread) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, hence the last ')').
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

export type TargetName = 'bare' | 'hono' | 'healthFloor' | 'health' | 'trackFloor' | 'track';

type ServerName = 'bare' | 'hono' | 'shaped' | 'service' | 'noStore';

interface Target {
  name: TargetName;
  label: string;
  /** Which server process (several targets may share one). */
  server: ServerName;
  path: string;
  script?: string;
}

export const TARGETS: Target[] = [
  { name: 'bare', label: 'bare node:http JSON', server: 'bare', path: '/' },
  { name: 'hono', label: 'Hono alone, one JSON route', server: 'hono', path: '/health' },
  { name: 'healthFloor', label: 'bare node:http, /health answer shape', server: 'shaped', path: '/health' },
  { name: 'health', label: 'service GET /health (npm start)', server: 'service', path: '/health' },
  { name: 'trackFloor', label: 'bare node:http, /track shape (read, parse)', server: 'shaped', path: '/track', script: TRACK_SCRIPT },
  { name: 'track', label: 'service POST /track, no-op store', server: 'noStore', path: '/track', script: TRACK_SCRIPT },
];

function startServer(server: ServerName, databaseUrl: string, nodeArgs: string[] = []): Promise<StartedProcess> {
  if (server === 'service') {
    // What `npm start` runs, at the production log level (a /health line is debug: not written).
    return startProcess({
      args: [...nodeArgs, '--import', 'tsx', 'src/adapter/node/main.ts'],
      env: { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: databaseUrl },
      ready: SERVICE_READY,
      keepOutput: 4000,
    });
  }
  const harness = { bare: 'bare-server.mjs', hono: 'hono-server.mjs', shaped: 'shaped-server.mjs', noStore: 'no-store-server.ts' }[server];
  const args = [...nodeArgs, ...(server === 'noStore' ? ['--import', 'tsx'] : []), join(ROOT, 'bench/perf/harness', harness)];
  return startProcess({ args, env: {}, ready: /LISTENING (\d+)/, keepOutput: 4000 });
}

export interface TargetRuns {
  runs: (WrkResult & { cpuUsPerRequest: number })[];
  requestsPerSec: Spread;
  cpuUsPerRequest: Spread;
  /** This target's req/s ÷ the bare server's, run by run (each pair ran seconds apart). */
  ratioToBare: Spread;
  /** bare's CPU per request ÷ this target's: the same comparison from CPU time. */
  cpuRatioToBare: number;
}



export interface StageRow {
  stage: string;
  share: number;
  usPerRequest: number;
}

export interface WarmStagesResult {
  seconds: number;
  connections: number;
  repeats: number;
  node: string;
  targets: Record<TargetName, TargetRuns>;
  /** Per-request stages of the service targets (µs, from the profile's shares × CPU per request). */
  stages: Record<'health' | 'track', StageRow[]>;
}

/** Runs every target `repeats` times, interleaved (round by round, the order rotating). */
async function measureThroughput(seconds: number, connections: number, repeats: number, databaseUrl: string): Promise<Record<TargetName, TargetRuns>> {
  const servers: Record<ServerName, StartedProcess> = {
    bare: await startServer('bare', databaseUrl),
    hono: await startServer('hono', databaseUrl),
    shaped: await startServer('shaped', databaseUrl),
    service: await startServer('service', databaseUrl),
    noStore: await startServer('noStore', databaseUrl),
  };
  const runs = Object.fromEntries(TARGETS.map((t) => [t.name, [] as TargetRuns['runs']])) as Record<TargetName, TargetRuns['runs']>;
  try {
    // Warm-up: JIT and caches, one short run each.
    for (const t of TARGETS) runWrk(`${servers[t.server].url}${t.path}`, 1, connections, t.script);
    for (let r = 0; r < repeats; r++) {
      const order = TARGETS.map((_, k) => TARGETS[(k + r) % TARGETS.length]!);
      for (const t of order) {
        const pid = servers[t.server].child.pid!;
        const before = cpuSeconds(pid);
        const w = runWrk(`${servers[t.server].url}${t.path}`, seconds, connections, t.script);
        const used = cpuSeconds(pid) - before;
        if (w.non2xx) throw new Error(`${t.label}: ${w.non2xx} answers were not 2xx`);
        runs[t.name].push({ ...w, cpuUsPerRequest: (used * 1e6) / w.requests });
      }
      if (process.stderr.isTTY) process.stderr.write(`\r  warm throughput: round ${r + 1}/${repeats}`);
    }
    if (process.stderr.isTTY) process.stderr.write('\n');
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
  }
  const bare = runs.bare;
  const bareCpu = spread(bare.map((b) => b.cpuUsPerRequest)).median;
  return Object.fromEntries(
    TARGETS.map((t) => {
      const rs = runs[t.name];
      const cpu = spread(rs.map((x) => x.cpuUsPerRequest));
      return [
        t.name,
        {
          runs: rs,
          requestsPerSec: spread(rs.map((x) => x.requestsPerSec)),
          cpuUsPerRequest: cpu,
          ratioToBare: spread(rs.map((x, i) => x.requestsPerSec / bare[i]!.requestsPerSec)),
          cpuRatioToBare: bareCpu / cpu.median,
        },
      ];
    }),
  ) as Record<TargetName, TargetRuns>;
}

// ---------------------------------------------------------------------------------------------
// Stages from a CPU profile
// ---------------------------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

/**
 * Stage rules, tried on each frame from the sampled one outwards; the first match wins. Frames of
 * Node's generic helpers (events, buffers, validators, crypto…) and native frames match nothing,
 * so their time counts for the code that called them.
 */
const STAGE_RULES: { stage: string; test: (url: string, fn: string) => boolean }[] = [
  { stage: 'store (no-op)', test: (u) => u.includes('/harness/no-store-server') },
  { stage: 'validate (zod schema)', test: (u) => u.includes('/src/core/event-schema') || u.includes('/node_modules/zod/') },
  { stage: 'parse (body read, JSON.parse)', test: (u) => u.includes('/src/core/json-body') || u.includes('/src/adapter/node/read-body') },
  { stage: 'auth + rate limit', test: (u) => u.includes('/src/core/auth') || u.includes('/src/core/rate-limit') },
  { stage: 'log (access line, JSON)', test: (u) => u.includes('/src/core/logger') },
  { stage: 'serialize (c.json: JSON.stringify, Response)', test: (u, f) => u.includes('/hono/dist/context') && /^(json|#newResponse|newResponse|body|text)$/.test(f) },
  { stage: 'route handler (/track, /health bodies)', test: (u) => /\/src\/core\/routes\//.test(u) || u.includes('/src/core/text') },
  { stage: 'app middleware (request id, headers, CORS, timing)', test: (u) => /\/src\/core\/(app|cors|context|runtime-info|http-errors)\.ts/.test(u) || u.includes('/hono/dist/middleware/') },
  { stage: 'headers (lightweight Headers)', test: (u) => u.includes('/src/adapter/web-objects') },
  { stage: 'route (Hono: router, compose, context)', test: (u) => u.includes('/node_modules/hono/dist/') },
  { stage: 'Node adapter (@hono/node-server, src/adapter/node)', test: (u) => u.includes('/@hono/node-server/') || u.includes('/src/adapter/node/') },
  {
    stage: 'Node HTTP (parser, socket, write)',
    test: (u) => /^node:(_http_|http$|net$|internal\/(http|stream_base|streams|net|js_stream)|stream$)/.test(u),
  },
  { stage: 'event loop (timers, microtasks, ticks)', test: (u) => /^node:internal\/(timers|process\/task_queues)/.test(u) },
  { stage: 'benchmark harness', test: (u) => u.includes('/bench/perf/harness/') },
];

/**
 * µs of samples per stage; only samples inside `windowUs` (CLOCK_MONOTONIC µs, the clock of the
 * profile's timestamps and of process.hrtime in any process) count, so start-up is left out.
 */
export function chargeStages(profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number }, windowUs: [number, number]): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stageOf = new Map<number, string>();
  const classify = (id: number): string => {
    const cached = stageOf.get(id);
    if (cached) return cached;
    const fn = byId.get(id)!.callFrame.functionName;
    let stage: string | undefined;
    if (fn === '(idle)') stage = 'idle';
    else if (fn === '(garbage collector)') stage = 'V8: garbage collector';
    else if (fn === '(program)') stage = 'V8/native, no JS frame';
    for (let at: number | undefined = id; !stage && at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      stage = STAGE_RULES.find((r) => r.test(f.url, f.functionName))?.stage;
    }
    stage ??= 'other (event loop, Node internals)';
    stageOf.set(id, stage);
    return stage;
  };
  const out = new Map<string, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t < windowUs[0] || t > windowUs[1]) return;
    const stage = classify(id);
    out.set(stage, (out.get(stage) ?? 0) + dt);
  });
  out.delete('idle');
  return out;
}

/** Profiles the service under wrk and returns each stage's share of the busy time. */
async function profileTarget(t: Target, seconds: number, connections: number, databaseUrl: string): Promise<Map<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'mlops-warm-prof-'));
  try {
    const server = await startServer(t.server, databaseUrl, ['--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', dir]);
    runWrk(`${server.url}${t.path}`, 1, connections, t.script); // warm-up, outside the window
    const from = nowUs();
    runWrk(`${server.url}${t.path}`, seconds, connections, t.script);
    const to = nowUs();
    await server.stop('SIGTERM'); // the harness exits on SIGTERM, which writes the profile
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no CPU profile written for ${t.label}`);
    const charged = chargeStages(JSON.parse(readFileSync(join(dir, file), 'utf8')), [from, to]);
    const busy = [...charged.values()].reduce((a, b) => a + b, 0);
    return new Map([...charged].map(([k, us]) => [k, us / busy]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function warmStages(seconds: number, repeats: number, connections = 32): Promise<WarmStagesResult> {
  const db = await createBenchDatabase('warm');
  try {
    const targets = await measureThroughput(seconds, connections, repeats, db.url);
    const stages = {} as WarmStagesResult['stages'];
    for (const name of ['health', 'track'] as const) {
      const shares = await profileTarget(TARGETS.find((t) => t.name === name)!, seconds, connections, db.url);
      const cpu = targets[name].cpuUsPerRequest.median;
      stages[name] = [...shares]
        .map(([stage, share]) => ({ stage, share, usPerRequest: share * cpu }))
        .sort((a, b) => b.usPerRequest - a.usPerRequest);
    }
    return { seconds, connections, repeats, node: process.version, targets, stages };
  } finally {
    await db.drop();
  }
}

export const WARM_TARGETS = { health: 0.75, track: 0.5 } as const;

export function printWarmStages(r: WarmStagesResult): boolean {
  console.log(`\nWarm servers, wrk -t1 -c${r.connections} -d${r.seconds}s × ${r.repeats} interleaved rounds (${machine()})`);
  console.log('Medians (min–max); "× bare" is paired run by run; CPU is the server process\'s own time per request.\n');
  const rows = TARGETS.map((t) => {
    const x = r.targets[t.name];
    const rps = x.requestsPerSec;
    return [
      t.label,
      `${rps.median.toFixed(0)} (${rps.min.toFixed(0)}–${rps.max.toFixed(0)})`,
      t.name === 'bare' ? '1.00' : `${x.ratioToBare.median.toFixed(2)} (${x.ratioToBare.min.toFixed(2)}–${x.ratioToBare.max.toFixed(2)})`,
      `${x.cpuUsPerRequest.median.toFixed(1)} (${x.cpuUsPerRequest.min.toFixed(1)}–${x.cpuUsPerRequest.max.toFixed(1)})`,
      x.cpuRatioToBare.toFixed(2),
    ];
  });
  console.log(table(['server', 'req/s', '× bare', 'CPU µs/request', 'CPU: bare ÷ this'], rows));
  for (const name of ['health', 'track'] as const) {
    console.log(`\nWhere a ${name === 'health' ? 'GET /health' : 'POST /track (no-op store)'} goes: ${r.targets[name].cpuUsPerRequest.median.toFixed(1)} µs of CPU per request, split by a CPU profile\n`);
    console.log(table(['stage', 'share', 'µs/request'], r.stages[name].filter((s) => s.share >= 0.005).map((s) => [s.stage, `${(s.share * 100).toFixed(1)} %`, s.usPerRequest.toFixed(1)])));
  }
  console.log('');
  const h = r.targets.health.ratioToBare.median;
  const k = r.targets.track.ratioToBare.median;
  const floor = (n: TargetName) => `${r.targets[n].ratioToBare.median.toFixed(2)}×`;
  const range = (n: TargetName) => `${r.targets[n].ratioToBare.min.toFixed(2)}–${r.targets[n].ratioToBare.max.toFixed(2)}`;
  const verdicts = [
    {
      name: 'warm GET /health (median of rounds)',
      measured: `${h.toFixed(2)}× bare (${range('health')}; CPU ${r.targets.health.cpuRatioToBare.toFixed(2)}×; shape floor ${floor('healthFloor')})`,
      target: `≥ ${WARM_TARGETS.health}×`,
      met: h >= WARM_TARGETS.health,
    },
    {
      name: 'warm POST /track, no-op store',
      measured: `${k.toFixed(2)}× bare (${range('track')}; CPU ${r.targets.track.cpuRatioToBare.toFixed(2)}×; shape floor ${floor('trackFloor')})`,
      target: `≥ ${WARM_TARGETS.track}×`,
      met: k >= WARM_TARGETS.track,
    },
  ];
  console.log(table(['target', 'measured', 'goal', 'met'], verdicts.map((v) => [v.name, v.measured, v.target, v.met ? 'yes' : 'NO'])));
  return verdicts.every((v) => v.met);
}
