/**
 * A throwaway PostgreSQL cluster of our own (initdb in a temp folder, a free port, trust auth),
 * for tests that stop, freeze or restart the database: the machine's shared server at :5432 is
 * used by other suites at the same time and must never be touched.
 *
 * PostgreSQL refuses to run as root, so every binary runs as the `postgres` user through runuser.
 * Where that is impossible (not root, no binaries, no postgres user) `pgClusterSkip` holds a reason;
 * under CI (any truthy CI, see skip.ts) `pgClusterProblem` is set instead and the suite must fail, not skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../tools/shared/free-port.ts';
import { IN_CI } from './skip.ts';

function findBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const r = spawnSync('id', ['postgres'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const uid = /uid=(\d+)/.exec(r.stdout)?.[1];
  const gid = /gid=(\d+)/.exec(r.stdout)?.[1];
  return uid && gid ? { uid: Number(uid), gid: Number(gid) } : undefined;
}

const BIN = findBinDir();
const USER = postgresUser();

function problem(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (runuser -u postgres is needed to run a private PostgreSQL cluster)';
  if (!BIN) return 'no PostgreSQL server binaries in /usr/lib/postgresql/<version>/bin (apt-get install postgresql)';
  if (!USER) return 'no `postgres` system user';
  if (spawnSync('runuser', ['--help'], { stdio: 'ignore' }).status !== 0) return 'runuser not available';
  return undefined;
}

const why = problem();
/** Set when the cluster cannot run here and CI=true: the suite must fail with it. */
export const pgClusterProblem = why && IN_CI ? why : undefined;
/** A skip reason outside CI (printed loudly once). */
export const pgClusterSkip: string | false = why && !IN_CI ? `private PostgreSQL cluster unavailable: ${why}` : false;
if (pgClusterSkip) {
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n!! SKIPPING the database-outage tests: ${pgClusterSkip}\n!! (under CI this is a failure)\n${bar}\n`);
}

export interface PgCluster {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  adminUrl: string;
  port: number;
  dataDir: string;
  /** A new empty database on this cluster; its URL. */
  createDatabase(name: string): string;
  /** pg_ctl stop (default -m immediate: a crash, connections cut without goodbye). */
  stop(mode?: 'immediate' | 'fast'): void;
  start(): void;
  /** SIGSTOP / SIGCONT every process of the cluster: a database that accepts TCP but never answers. */
  freeze(): void;
  thaw(): void;
  running(): boolean;
  /** Stops the cluster and deletes its folder. */
  remove(): void;
  log(): string;
}

const asPostgres = (cmd: string, args: string[]) =>
  execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export async function startPgCluster(): Promise<PgCluster> {
  const reason = problem();
  if (reason) throw new Error(`cannot run a private PostgreSQL cluster: ${reason}`);
  const bin = BIN!;
  const root = mkdtempSync(join(tmpdir(), 'mlops-pgcluster-'));
  const dataDir = join(root, 'data');
  const sockDir = join(root, 'sock');
  mkdirSync(sockDir);
  for (const p of [root, sockDir]) chownSync(p, USER!.uid, USER!.gid);
  const logFile = join(root, 'server.log');
  const port = await freePort();
  asPostgres(join(bin, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  // fsync off: the OS survives every "crash" here, so durability is unaffected and tests are faster.
  // synchronous_commit stays on: an immediate stop would lose acknowledged commits otherwise.
  const opts = `-p ${port} -k ${sockDir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`;
  const pgCtl = (args: string[]) => asPostgres(join(bin, 'pg_ctl'), ['-D', dataDir, ...args]);
  const postmasterPid = () => {
    try {
      return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return 0;
    }
  };
  const signalAll = (signal: 'STOP' | 'CONT') => {
    const pid = postmasterPid();
    if (!pid) return;
    // The postmaster and its children (backends, checkpointer, walwriter…).
    const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    // The parent first: a stopped postmaster forks no new backend while the children are signalled.
    for (const p of [pid, ...children.map(Number)]) {
      try {
        process.kill(p, `SIG${signal}`);
      } catch {
        /* exited meanwhile */
      }
    }
  };
  const cluster: PgCluster = {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    createDatabase(name) {
      asPostgres(join(bin, 'psql'), ['-h', sockDir, '-p', String(port), '-U', 'postgres', '-q', '-c', `CREATE DATABASE "${name}"`]);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop(mode = 'immediate') {
      pgCtl(['-m', mode, '-w', 'stop']);
    },
    start() {
      pgCtl(['-o', opts, '-l', logFile, '-w', '-t', '30', 'start']);
    },
    freeze: () => signalAll('STOP'),
    thaw: () => signalAll('CONT'),
    running: () => spawnSync('runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), '-D', dataDir, 'status'], { stdio: 'ignore' }).status === 0,
    remove() {
      try {
        cluster.thaw();
        if (cluster.running()) pgCtl(['-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
    log: () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
  };
  try {
    cluster.start();
  } catch (error) {
    const log = cluster.log();
    rmSync(root, { recursive: true, force: true });
    throw new Error(`private PostgreSQL did not start: ${(error as Error).message}\n${log}`);
  }
  return cluster;
}
