import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireDirLock } from '../../src/storage/dir-lock.ts';
import { StoreStartupError } from '../../src/storage/errors.ts';

describe('embedded database folder lock', () => {
  it('refuses a second holder while the first is alive, and frees on release', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-'));
    const lock = acquireDirLock(dir);
    // Same process, but pretend to be another live one: the parent of this process.
    writeFileSync(lock.path, JSON.stringify({ pid: process.ppid, host: hostname(), started_at: 'x' }));
    assert.throws(() => acquireDirLock(dir), (e: Error) => e instanceof StoreStartupError && /already in use by process/.test(e.message));
    writeFileSync(lock.path, JSON.stringify({ pid: process.pid, host: hostname(), started_at: 'x' }));
    lock.release();
    assert.equal(existsSync(lock.path), false);
    acquireDirLock(dir).release();
  });

  it('takes over the lock of a process that died without releasing it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-'));
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(join(dir, '.mlops-service.lock'), JSON.stringify({ pid: Number(dead), host: hostname(), started_at: 'x' }));
    const lock = acquireDirLock(dir);
    assert.equal(JSON.parse(readFileSync(lock.path, 'utf8')).pid, process.pid);
    lock.release();
  });

  it('refuses a lock held from another host, saying how to clear it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-'));
    writeFileSync(join(dir, '.mlops-service.lock'), JSON.stringify({ pid: 1, host: 'elsewhere', started_at: 'x' }));
    assert.throws(() => acquireDirLock(dir), /on host elsewhere.*delete/);
  });
});
