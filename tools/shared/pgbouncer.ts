/**
 * A private PgBouncer (Debian's `pgbouncer`, 1.18 on bookworm) in front of the local PostgreSQL,
 * for tests and benchmarks that must see what breaks through a transaction-mode pooler such as
 * Neon's `-pooler` host: per-transaction server connections, no session state, no named prepared
 * statements across transactions, startup parameters rejected.
 *
 * Each call gets its own temp dir (config, userlist, log, pidfile) and a free loopback port; the
 * package's own service on :6432 is never used. PgBouncer refuses to run as root, so as root it is
 * started as the `postgres` user (setpriv, falling back to spawn's uid/gid).
 *
 * Startup parameters (checked against 1.18 with postgres.js 3.4.9): postgres.js sends `user`,
 * `database`, `client_encoding=UTF8`, `application_name` (default `postgres.js`), every key of its
 * `connection` option and every unknown URL query parameter. PgBouncer 1.18 accepts
 * client_encoding, DateStyle, TimeZone, standard_conforming_strings and application_name, and
 * closes the connection with 08P01 "unsupported startup parameter: X" for anything else, e.g.
 * statement_timeout, plan_cache_mode, idle_in_transaction_session_timeout, search_path, options.
 * We ignore only `extra_float_digits`, exactly as Neon's own pgbouncer.ini does
 * (neondatabase/neon compute/etc/pgbouncer.ini; pg/JDBC send it, postgres.js does not). An ignored
 * parameter is dropped, not forwarded, so ignoring more would hide a real failure (and silently
 * lose e.g. a statement_timeout) instead of showing it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { freePort } from './free-port.ts';

export interface PgBouncer {
  port: number;
  host: '127.0.0.1';
  /** the same URL with host:port replaced by the pooler's */
  urlFor(databaseUrl: string): string;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** Only loopback: the harness never points at another machine. Default 127.0.0.1. */
  upstreamHost?: string;
  upstreamPort?: number;
  poolMode?: 'transaction' | 'session';
  /** Server connections per user/database pair; PgBouncer's own default is 20. */
  defaultPoolSize?: number;
  maxClientConn?: number;
  /** How long to wait for the first `SELECT 1` through the pooler. Default 15 s. */
  readyTimeoutMs?: number;
}

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer', '/usr/local/sbin/pgbouncer'];

/** Path of the pgbouncer binary if installed (Debian puts it in /usr/sbin, often not on PATH). */
export function pgbouncerBinary(): string | undefined {
  const found = CANDIDATES.find((p) => existsSync(p));
  if (found) return found;
  const r = spawnSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' });
  const p = r.status === 0 ? r.stdout.trim() : '';
  return p && existsSync(p) ? p : undefined;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const r = spawnSync('id', ['postgres'], { encoding: 'utf8' });
  const uid = r.status === 0 ? /uid=(\d+)/.exec(r.stdout)?.[1] : undefined;
  const gid = r.status === 0 ? /gid=(\d+)/.exec(r.stdout)?.[1] : undefined;
  return uid && gid ? { uid: Number(uid), gid: Number(gid) } : undefined;
}

function hasSetpriv(): boolean {
  return spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost']);

// Every running pooler, killed when this process exits however it exits (a crashed test must not
// leave one behind). SIGKILL: an 'exit' hook cannot wait for a graceful shutdown.
const live = new Map<ChildProcess, string>();
let hooked = false;
function track(child: ChildProcess, dir: string) {
  live.set(child, dir);
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const [c, d] of live) {
      try {
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
      rmSync(d, { recursive: true, force: true });
    }
  });
}

function tail(path: string, chars = 4000): string {
  try {
    return readFileSync(path, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}

export async function startPgBouncer(options: PgBouncerOptions = {}): Promise<PgBouncer> {
  const binary = pgbouncerBinary();
  if (!binary) throw new Error('pgbouncer is not installed (apt-get install pgbouncer)');
  const upstreamHost = options.upstreamHost ?? '127.0.0.1';
  if (!LOOPBACK.has(upstreamHost)) throw new Error(`startPgBouncer: upstream must be 127.0.0.1, not ${upstreamHost}`);
  const upstreamPort = options.upstreamPort ?? 5432;
  const poolMode = options.poolMode ?? 'transaction';

  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? postgresUser() : undefined;
  if (asRoot && !user) throw new Error('pgbouncer refuses to run as root and there is no `postgres` user to run it as');

  // A taken port (raced between freePort and pgbouncer's bind) is retried with another one.
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      return await launch({ binary, port, upstreamPort, poolMode, user, options });
    } catch (error) {
      lastError = error as Error;
      if (!/Address already in use|nowhere to listen/.test(lastError.message)) throw lastError;
    }
  }
  throw lastError!;
}

async function launch(a: {
  binary: string;
  port: number;
  upstreamPort: number;
  poolMode: 'transaction' | 'session';
  user: { uid: number; gid: number } | undefined;
  options: PgBouncerOptions;
}): Promise<PgBouncer> {
  const { port, upstreamPort, user, options } = a;
  const dir = mkdtempSync(join(tmpdir(), 'mlops-pgbouncer-'));
  const ini = join(dir, 'pgbouncer.ini');
  const logFile = join(dir, 'pgbouncer.log');
  const stderrFile = join(dir, 'stderr.log');
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n');
  writeFileSync(
    ini,
    [
      '[databases]',
      // Any database name maps through to the same name on the local server.
      `* = host=127.0.0.1 port=${upstreamPort}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      // Empty: TCP on loopback only, no socket file left behind.
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'admin_users = postgres',
      `pool_mode = ${a.poolMode}`,
      `default_pool_size = ${options.defaultPoolSize ?? 20}`,
      `max_client_conn = ${options.maxClientConn ?? 1000}`,
      // See the header: what Neon's pooler ignores, nothing more.
      'ignore_startup_parameters = extra_float_digits',
      `logfile = ${logFile}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      // One line per connection would flood the log under a benchmark (Neon turns them off too).
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  if (user) for (const p of [dir, ini, join(dir, 'userlist.txt')]) chownSync(p, user.uid, user.gid);

  // stdout/stderr go to a file (everything else is in the logfile): no pipe keeps this process alive.
  const errFd = openSync(stderrFile, 'a');
  if (user) chownSync(stderrFile, user.uid, user.gid);
  let child: ChildProcess;
  try {
    // setpriv execs in place (the child's pid is pgbouncer's, so signals reach it) and sets a
    // parent-death signal after dropping privileges: even a SIGKILLed test leaves no pooler behind.
    const pgbArgs = ['-q', ini];
    if (hasSetpriv()) {
      const drop = user ? [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'] : [];
      child = spawn('setpriv', [...drop, '--pdeathsig=TERM', a.binary, ...pgbArgs], { cwd: dir, stdio: ['ignore', errFd, errFd] });
    } else {
      child = spawn(a.binary, pgbArgs, { cwd: dir, stdio: ['ignore', errFd, errFd], ...(user ? { uid: user.uid, gid: user.gid } : {}) });
    }
  } finally {
    closeSync(errFd);
  }
  child.unref();
  track(child, dir);
  const exited = once(child, 'exit').catch(() => []) as Promise<[number | null, NodeJS.Signals | null]>;
  const logs = () => [tail(logFile), tail(stderrFile, 1000)].filter(Boolean).join('\n') || '(no output)';
  const cleanup = () => {
    live.delete(child);
    rmSync(dir, { recursive: true, force: true });
  };

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      // SIGINT is a safe shutdown on every version (SIGTERM's meaning changed in 1.23); it waits for
      // open transactions, so escalate after a bound.
      const escalate = [
        setTimeout(() => child.kill('SIGTERM'), 2000),
        setTimeout(() => child.kill('SIGKILL'), 4000),
      ];
      child.kill('SIGINT');
      await exited;
      escalate.forEach(clearTimeout);
    }
    cleanup();
  };

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
  let last: unknown;
  const dead = () => child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
  while (!dead() && Date.now() < deadline) {
    // prepare:false: the probe itself must work through a transaction pooler.
    const sql = postgres(url, { max: 1, prepare: false, fetch_types: false, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`SELECT 1`;
      last = undefined;
      break;
    } catch (error) {
      last = error;
    } finally {
      await sql.end({ timeout: 1 }).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (dead() || last !== undefined) {
    const why = dead() ? `pgbouncer exited (code ${child.exitCode}, signal ${child.signalCode})` : `not ready within ${options.readyTimeoutMs ?? 15_000} ms: ${(last as Error)?.message}`;
    const log = logs();
    await stop();
    throw new Error(`pgbouncer on 127.0.0.1:${port} (upstream 127.0.0.1:${upstreamPort}): ${why}\n--- pgbouncer log (tail) ---\n${log}`);
  }

  return {
    port,
    host: '127.0.0.1',
    urlFor(databaseUrl: string) {
      const u = new URL(databaseUrl);
      // The pooler only reaches the local server: mapping another server's URL onto it would
      // silently change which database a test talks to.
      const target = `${u.hostname}:${u.port || 5432}`;
      if (!LOOPBACK.has(u.hostname) || Number(u.port || 5432) !== upstreamPort) {
        throw new Error(`urlFor: ${target} is not this pooler's upstream (127.0.0.1:${upstreamPort})`);
      }
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    stop,
  };
}
