/**
 * An exclusive lock on the embedded database folder. PGlite takes none, and two processes on one
 * folder corrupt it. A pid file rather than a library lock (e.g. proper-lockfile, which waits for
 * an mtime to go stale): a process killed with SIGKILL must not block a restart for seconds, and
 * "is that pid alive on this host" answers at once.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
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
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function acquireDirLock(dir: string, fileName = '.mlops-service.lock'): DirLock {
  const folder = resolve(dir);
  mkdirSync(folder, { recursive: true });
  const path = join(folder, fileName);
  const me: LockInfo = { pid: process.pid, host: hostname(), started_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off('exit', release);
        try {
          const current = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
          if (current.pid === me.pid && current.host === me.host) rmSync(path, { force: true });
        } catch {
          // Already gone: nothing to release.
        }
      };
      process.on('exit', release);
      return { path, release };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder: LockInfo | undefined;
    try {
      holder = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    } catch {
      holder = undefined; // Unreadable or half-written: treat as stale.
    }
    if (holder && holder.host !== me.host) {
      throw new StoreStartupError(
        `DATA_DIR ${folder} is locked by process ${holder.pid} on host ${holder.host} (since ${holder.started_at}). ` +
          `If no process uses it any more, delete ${path}; otherwise set DATA_DIR to another folder.`,
      );
    }
    if (holder && holder.pid !== me.pid && alive(holder.pid)) {
      throw new StoreStartupError(
        `DATA_DIR ${folder} is already in use by process ${holder.pid} (since ${holder.started_at}). ` +
          `Only one process may open an embedded database: stop that process, set DATA_DIR to another folder, ` +
          `or set DATABASE_URL to share a PostgreSQL server between processes.`,
      );
    }
    rmSync(path, { force: true }); // The holder died without cleaning up.
  }
  throw new StoreStartupError(`Could not lock DATA_DIR ${folder}: ${path} keeps reappearing`);
}
