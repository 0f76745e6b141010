import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireDirLock } from '../../src/storage/dir-lock.ts';
import { StoreStartupError } from '../../src/storage/errors.ts';

const LOCK = '.mlops-service.lock';
const linux = process.platform === 'linux';
const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const folder = () => mkdtempSync(join(tmpdir(), 'lock-'));
const deadPid = () => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
const inUse = (e: unknown) => e instanceof StoreStartupError && /already in use by process/.test(e.message);
const uncheckable = (e: unknown) => e instanceof StoreStartupError && /cannot be checked from here.*delete/.test(e.message);

describe('embedded database folder lock', () => {
  it('refuses a second holder while the first is alive, and frees on release', () => {
    const dir = folder();
    const lock = acquireDirLock(dir);
    assert.throws(() => acquireDirLock(dir), inUse, 'the same folder, even from the same process');
    const record = readFileSync(lock.path, 'utf8');
    // A record in the older format (pid and host name only) of a live process: the parent of this one.
    writeFileSync(lock.path, JSON.stringify({ pid: process.ppid, host: hostname(), started_at: 'x' }));
    assert.throws(() => acquireDirLock(dir), inUse);
    writeFileSync(lock.path, record);
    lock.release();
    assert.equal(existsSync(lock.path), false);
    assert.deepEqual(readdirSync(dir), [], 'no draft, FIFO or mutex left behind');
    acquireDirLock(dir).release();
  });

  it('release leaves alone a lock that is no longer its own', () => {
    const dir = folder();
    const lock = acquireDirLock(dir);
    writeFileSync(lock.path, JSON.stringify({ pid: process.ppid, host: hostname(), started_at: 'x' }));
    lock.release();
    assert.ok(existsSync(lock.path));
  });

  it('takes over the lock of a process that died without releasing it', () => {
    const dir = folder();
    writeFileSync(join(dir, LOCK), JSON.stringify({ pid: deadPid(), host: hostname(), started_at: 'x' }));
    const lock = acquireDirLock(dir);
    assert.equal(JSON.parse(readFileSync(lock.path, 'utf8')).pid, process.pid);
    lock.release();
  });

  it('refuses a lock held from another host, saying how to clear it', () => {
    const dir = folder();
    writeFileSync(join(dir, LOCK), JSON.stringify({ pid: 1, host: 'elsewhere', started_at: 'x' }));
    assert.throws(() => acquireDirLock(dir), /on host elsewhere.*delete/);
  });

  it('refuses a lock file it cannot read rather than guessing it is stale', () => {
    const dir = folder();
    writeFileSync(join(dir, LOCK), '{"pid": 12');
    assert.throws(() => acquireDirLock(dir), /cannot read.*delete that file/);
  });

  describe('on Linux', { skip: !linux && 'Linux only: boot id, pid namespaces, /proc' }, () => {
    const record = (extra: Record<string, unknown>) =>
      JSON.stringify({ host: hostname(), started_at: 'x', token: 't', boot_id: bootId(), pid_ns: readlinkSync('/proc/self/ns/pid'), ...extra });

    it('a container on this kernel, in another pid namespace: its FIFO tells whether it is alive', () => {
      const dir = folder();
      execFileSync('mkfifo', [join(dir, 'holder.fifo')]);
      // A pid that means nothing here: the holder's pid namespace is another one.
      writeFileSync(join(dir, LOCK), record({ pid: 1, pid_ns: 'pid:[1]', fifo: 'holder.fifo' }));
      const holderEnd = openSync(join(dir, 'holder.fifo'), constants.O_RDONLY | constants.O_NONBLOCK);
      assert.throws(() => acquireDirLock(dir), inUse, 'the FIFO is held open: the holder is alive');
      closeSync(holderEnd); // the kernel does this when the holder dies
      const lock = acquireDirLock(dir);
      assert.equal(existsSync(join(dir, 'holder.fifo')), false, 'the dead holder FIFO is removed with its lock');
      lock.release();
    });

    it('another pid namespace without a FIFO cannot be checked: refused, never guessed from the pid', () => {
      const dir = folder();
      writeFileSync(join(dir, LOCK), record({ pid: deadPid(), pid_ns: 'pid:[1]' }));
      assert.throws(() => acquireDirLock(dir), uncheckable);
    });

    it('a live pid that started at another time is a reused pid: the holder is gone', () => {
      const dir = folder();
      writeFileSync(join(dir, LOCK), record({ pid: process.ppid, start_time: '1' }));
      acquireDirLock(dir).release();
    });

    it('a lock from this host name before a reboot (another boot id) is stale', () => {
      const dir = folder();
      writeFileSync(join(dir, LOCK), record({ pid: process.ppid, boot_id: '00000000-0000-0000-0000-000000000000' }));
      acquireDirLock(dir).release();
    });

    it('a lock from another kernel and host name is refused', () => {
      const dir = folder();
      writeFileSync(join(dir, LOCK), record({ pid: deadPid(), host: 'other-host', boot_id: '00000000-0000-0000-0000-000000000000' }));
      assert.throws(() => acquireDirLock(dir), uncheckable);
    });
  });
});
