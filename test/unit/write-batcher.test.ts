import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WriteBatcher } from '../../src/storage/write-batcher.ts';

/** A commit that only finishes when the test says so. */
function controllable() {
  const calls: { items: number[]; finish: (error?: Error) => void }[] = [];
  const commit = (items: number[]) =>
    new Promise<number[]>((resolve, reject) => {
      calls.push({ items, finish: (error) => (error ? reject(error) : resolve(items.map((i) => i * 10))) });
    });
  return { calls, commit };
}

describe('group commit', () => {
  it('commits a lone job at once, then batches jobs that arrive during a commit', async () => {
    const { calls, commit } = controllable();
    const b = new WriteBatcher(commit, { maxItems: 100, maxConcurrent: 1, retryAlone: () => true });
    const first = b.submit([1]);
    assert.equal(calls.length, 1, 'no waiting for company when idle');
    const rest = [b.submit([2]), b.submit([3, 4]), b.submit([5])];
    assert.equal(calls.length, 1, 'later jobs wait for the commit in flight');
    let settled = false;
    void rest[0]!.then(() => (settled = true));
    calls[0]!.finish();
    assert.deepEqual(await first, [10]);
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, 'a job is not answered before its own commit');
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[1]!.items, [2, 3, 4, 5]);
    calls[1]!.finish();
    assert.deepEqual(await Promise.all(rest), [[20], [30, 40], [50]]);
    assert.deepEqual(b.stats, { commits: 2, items: 5, largestCommit: 4 });
  });

  it('respects maxItems without splitting a job', async () => {
    const { calls, commit } = controllable();
    const b = new WriteBatcher(commit, { maxItems: 3, maxConcurrent: 1, retryAlone: () => true });
    const all = [b.submit([0]), b.submit([1, 2]), b.submit([3, 4]), b.submit([5, 6, 7, 8])];
    const settle = () => new Promise((r) => setImmediate(r));
    calls[0]!.finish();
    await all[0];
    await settle();
    assert.deepEqual(calls[1]!.items, [1, 2]);
    calls[1]!.finish();
    await all[1];
    await settle();
    assert.deepEqual(calls[2]!.items, [3, 4]);
    calls[2]!.finish();
    await all[2];
    await settle();
    assert.deepEqual(calls[3]!.items, [5, 6, 7, 8], 'an oversized job still goes, alone');
    calls[3]!.finish();
    await all[3];
  });

  it('isolates a bad job: the others of a failed shared commit still commit', async () => {
    const seen: number[][] = [];
    const b = new WriteBatcher(
      async (items: number[]) => {
        seen.push(items);
        if (items.includes(13)) throw new Error('bad row 13');
        return items;
      },
      { maxItems: 100, maxConcurrent: 1, retryAlone: () => true },
    );
    const blocker = b.submit([0]);
    const jobs = [b.submit([1]), b.submit([13]), b.submit([2])];
    await blocker;
    const results = await Promise.allSettled(jobs);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.deepEqual(seen, [[0], [1, 13, 2], [1], [13], [2]]);
  });

  it('fails every job of the commit at once when the database is down', async () => {
    let commits = 0;
    const b = new WriteBatcher(
      async () => {
        commits++;
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
      { maxItems: 100, maxConcurrent: 1, retryAlone: () => false },
    );
    const jobs = [b.submit([1]), b.submit([2]), b.submit([3])];
    const results = await Promise.allSettled(jobs);
    assert.ok(results.every((r) => r.status === 'rejected'));
    assert.equal(commits, 2, 'one for the lone first job, one for the two that queued: no per-job retries');
  });
});
