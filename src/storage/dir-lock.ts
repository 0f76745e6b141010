/**
 * An exclusive lock on the embedded database folder. PGlite takes none, and two processes on one
 * folder corrupt it. A lock file rather than a library lock (e.g. proper-lockfile, which waits for
 * an mtime to go stale): a process killed with SIGKILL must not block a restart for seconds.
 *
 * The rule, in order:
 * 1. Taking the lock is atomic: the holder's record is written in full to a file of its own, then
 *    hard-linked to `.mlops-service.lock` (link(2) fails if the name exists). Of two processes
 *    started together exactly one wins, and nobody ever reads a half-written record.
 * 2. A lock whose holder is alive is never taken. Liveness is checked only where the kernel can
 *    answer: the holder keeps a FIFO in the folder open for reading, and on the same running
 *    kernel (same boot id: this machine, any container on it) opening that FIFO for writing fails
 *    with ENXIO once no process holds it open, whatever its pid namespace. Without the FIFO (a
 *    file system without FIFOs, a lock from an older version) the pid is checked, in the same pid
 *    namespace only, with the process start time so a reused pid is not mistaken for the holder.
 * 3. A lock written on this host name before the last reboot (another boot id) is stale.
 * 4. Anything else cannot be checked from here — another host name, another kernel, a container
 *    without the FIFO — and is refused with a message saying what to do: such a holder may be
 *    alive, and taking its folder would corrupt the database. Host names are assumed unique among
 *    the machines that share a folder.
 * 5. A stale lock is removed under a short mutex (mkdir, atomic) after reading it again, so two
 *    processes that both found it stale cannot remove each other's fresh lock.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync, constants, linkSync, mkdirSync, openSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { StoreStartupError } from './errors.ts';

export interface DirLock {
  readonly path: string;
  release(): void;
}

interface LockInfo {
  pid: number;
  host: string;
  started_at: string;
  /** Unique per acquisition: tells one record from another with the same pid. */
  token?: string;
  /** Linux: the running kernel's boot id. */
  boot_id?: string;
  /** Linux: the pid namespace (`pid:[4026531836]`); pids only compare within one. */
  pid_ns?: string;
  /** Linux: the holder's start time in clock ticks since boot (/proc/<pid>/stat field 22). */
  start_time?: string;
  /** The FIFO in the folder the holder keeps open for reading (its file name). */
  fifo?: string;
}

const readTrimmed = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
};

const bootId = () => readTrimmed('/proc/sys/kernel/random/boot_id');

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat; the command name before it may contain spaces and parentheses. */
function startTime(pid: number): string | undefined {
  const stat = readTrimmed(`/proc/${pid}/stat`);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type Holder = 'alive' | 'dead' | 'unknown';

/** Opening a FIFO for writing without blocking fails with ENXIO when no process has it open for reading. */
function fifoHolder(path: string): Holder {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENXIO' ? 'dead' : 'unknown';
  }
  closeSync(fd);
  return 'alive';
}

function holderState(folder: string, holder: LockInfo, me: LockInfo): Holder {
  const sameKernel = !!holder.boot_id && holder.boot_id === me.boot_id;
  if (sameKernel && holder.fifo) {
    const state = fifoHolder(join(folder, holder.fifo));
    if (state !== 'unknown') return state;
  }
  // A record without a boot id (an older version, or not Linux) has only the host name to go by.
  const samePids = holder.boot_id ? sameKernel && holder.pid_ns === me.pid_ns : holder.host === me.host;
  if (samePids) {
    if (!pidAlive(holder.pid)) return 'dead';
    return holder.start_time === undefined || startTime(holder.pid) === holder.start_time ? 'alive' : 'dead';
  }
  if (holder.host === me.host && holder.boot_id && me.boot_id && holder.boot_id !== me.boot_id) return 'dead'; // rebooted
  return 'unknown';
}

/** A FIFO this process holds open for reading while it holds the lock; undefined where FIFOs are unavailable. */
function openOwnFifo(folder: string, name: string): number | undefined {
  const path = join(folder, name);
  try {
    execFileSync('mkfifo', ['-m', '600', path], { stdio: 'ignore' });
    return openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    rmSync(path, { force: true });
    return undefined;
  }
}

function readLock(path: string): { raw: string; info: LockInfo | undefined } | undefined {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const info = JSON.parse(raw) as LockInfo;
    return { raw, info: typeof info?.pid === 'number' && typeof info.host === 'string' ? info : undefined };
  } catch {
    return { raw, info: undefined };
  }
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Runs `fn` holding `<lock>.takeover` (a directory: mkdir is atomic). The section lasts
 * microseconds, so a mutex older than 10 s was left by a process killed inside it.
 */
function withTakeoverMutex(lockPath: string, fn: () => void): void {
  const mutex = `${lockPath}.takeover`;
  for (let waited = 0; ; waited += 10) {
    try {
      mkdirSync(mutex);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    try {
      if (Date.now() - statSync(mutex).mtimeMs > 10_000) rmdirSync(mutex);
    } catch {
      // Released meanwhile.
    }
    if (waited > 5_000) throw new StoreStartupError(`Could not lock ${lockPath}: ${mutex} stays in place; delete it if no process is starting`);
    sleepSync(10);
  }
  try {
    fn();
  } finally {
    rmdirSync(mutex);
  }
}

/** How the errors name the folder and what to do: the lock serves more than one kind of folder. */
export interface LockWording {
  /** The folder as the user knows it, e.g. `DATA_DIR /srv/data`. */
  what(folder: string): string;
  /** The way out when it is taken, e.g. `set DATA_DIR to another folder`. */
  elsewhere: string;
  /** Said when a live process holds it: why only one may, and what to do. */
  onlyOne: string;
}

/** The embedded database's folder (the default). */
const EMBEDDED_DATABASE_FOLDER: LockWording = {
  what: (folder) => `DATA_DIR ${folder}`,
  elsewhere: 'set DATA_DIR to another folder',
  onlyOne: 'Only one process may open an embedded database: stop that process, set DATA_DIR to another folder, or set DATABASE_URL to share a PostgreSQL server between processes.',
};

export function acquireDirLock(
  dir: string,
  { fileName = '.mlops-service.lock', wording = EMBEDDED_DATABASE_FOLDER }: { fileName?: string; wording?: LockWording } = {},
): DirLock {
  const folder = resolve(dir);
  mkdirSync(folder, { recursive: true });
  const path = join(folder, fileName);
  const token = randomBytes(8).toString('hex');
  const fifoName = `${fileName}.${token}.fifo`;
  const me: LockInfo = {
    pid: process.pid,
    host: hostname(),
    started_at: new Date().toISOString(),
    token,
    boot_id: bootId(),
    pid_ns: pidNamespace(),
    start_time: startTime(process.pid),
  };
  // Open before the lock is published: from the moment it exists, a checker finds its holder alive.
  const fifoFd = openOwnFifo(folder, fifoName);
  if (fifoFd !== undefined) me.fifo = fifoName;
  const record = JSON.stringify(me);
  const draft = join(folder, `${fileName}.${token}.draft`);
  writeFileSync(draft, record, { mode: 0o644 });

  const dropFifo = () => {
    if (fifoFd === undefined) return;
    closeSync(fifoFd);
    rmSync(join(folder, fifoName), { force: true });
  };
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(draft, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const found = readLock(path);
        if (found) refuseOrRemove(folder, path, found, me, wording);
        continue;
      }
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off('exit', release);
        if (readLock(path)?.raw === record) rmSync(path, { force: true });
        dropFifo();
      };
      process.on('exit', release);
      return { path, release };
    }
  } catch (error) {
    dropFifo();
    throw error;
  } finally {
    rmSync(draft, { force: true });
  }
  dropFifo();
  throw new StoreStartupError(`Could not lock ${wording.what(folder)}: ${path} keeps reappearing`);
}

/** Throws when the lock must be left alone; returns once a stale lock is gone. */
function refuseOrRemove(folder: string, path: string, found: { raw: string; info: LockInfo | undefined }, me: LockInfo, wording: LockWording): void {
  const holder = found.info;
  if (!holder) {
    throw new StoreStartupError(
      `${wording.what(folder)} has a lock file this version cannot read (${path}). If no process uses the folder, delete that file; ` +
        `otherwise ${wording.elsewhere}.`,
    );
  }
  const state = holderState(folder, holder, me);
  if (state === 'alive') {
    throw new StoreStartupError(
      `${wording.what(folder)} is already in use by process ${holder.pid} (since ${holder.started_at}). ${wording.onlyOne}`,
    );
  }
  if (state === 'unknown') {
    throw new StoreStartupError(
      `${wording.what(folder)} is locked by process ${holder.pid} on host ${holder.host} (since ${holder.started_at}), which cannot ` +
        `be checked from here (another machine, or a container that shares the folder). If no process uses it any more, ` +
        `delete ${path}; otherwise ${wording.elsewhere}.`,
    );
  }
  withTakeoverMutex(path, () => {
    // Read again under the mutex: only the very record judged stale is removed.
    if (readLock(path)?.raw !== found.raw) return;
    unlinkSync(path);
    if (holder.fifo) rmSync(join(folder, holder.fifo), { force: true });
  });
}
