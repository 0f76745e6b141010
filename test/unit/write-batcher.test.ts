import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreUnavailableError } from '../../src/storage/errors.ts';
import {
  WriteBatcher,
  WriteNotStartedError,
  WriteOutcomeUnknownError,
  WriteQueueFullError,
} from '../../src/storage/write-batcher.ts';

/** A commit that only finishes when the test says so. */
function controllable() {
  const calls: { items: number[]; finish: (error?: Error) => void }[] = [];
  const commit = (items: number[]) =>
    new Promise<number[]>((resolve, reject) => {
      calls.push({ items, finish: (error) => (error ? reject(error) : resolve(items.map((i) => i * 10))) });
    });
  return { calls, commit };
}

/** Lets pending promise callbacks run (a commit that just finished hands over to the next one). */
const settle = () => new Promise((r) => setImmediate(r));

/** The checks every write error must pass: its class, a 503 to the core, its code, its message. */
const writeError =
  (kind: new (...args: never[]) => Error, code: string, message: RegExp) =>
  (e: unknown) =>
    e instanceof kind && e instanceof StoreUnavailableError && (e as { code?: string }).code === code && message.test(e.message);

/** Every item that ever reached a commit. */
const committedItems = (calls: { items: number[] }[]) => calls.flatMap((c) => c.items);

/**
 * Waits for a deadline to fire. The batcher's timers are unref'd, so without a ref'd handle the
 * event loop could end while the test still waits for one.
 */
async function rejectsAfterDeadline(promise: Promise<unknown>, check: (error: unknown) => boolean) {
  const keepAlive = setInterval(() => {}, 60_000);
  try {
    await assert.rejects(promise, (error) => check(error));
  } finally {
    clearInterval(keepAlive);
  }
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

// The timeout turns a promise that never settles (a regression) into a failure instead of a hang.
describe('group commit with deadlines and a bounded queue', { timeout: 5_000 }, () => {
  it('drops a job whose deadline passes while it is queued: it is never committed', async () => {
    const { calls, commit } = controllable();
    const b = new WriteBatcher(commit, { maxItems: 100, maxConcurrent: 1, retryAlone: () => true });
    const first = b.submit([1]);
    const late = b.submit([2], { deadlineMs: 20 });
    const other = b.submit([3]);
    assert.equal(b.pending, 2);
    // The commit of [1] is held open until the deadline of [2] has fired.
    await rejectsAfterDeadline(late, writeError(WriteNotStartedError, 'write_not_started', /^The write was not started within 20 ms; nothing was stored$/));
    assert.equal(b.pending, 1, 'removed from the queue');
    assert.equal(b.queuedItems, 1);
    calls[0]!.finish();
    assert.deepEqual(await first, [10]);
    await settle();
    assert.deepEqual(calls[1]!.items, [3]);
    calls[1]!.finish();
    assert.deepEqual(await other, [30]);
    await settle();
    assert.equal(calls.length, 2);
    assert.ok(!committedItems(calls).includes(2), 'the dropped job never reaches a commit');
    assert.deepEqual(b.stats, { commits: 2, items: 2, largestCommit: 1 });
  });

  it('answers "outcome unknown" when the deadline passes during its commit, without waiting for it', async () => {
    const { calls, commit } = controllable();
    const b = new WriteBatcher(commit, { maxItems: 100, maxConcurrent: 1, retryAlone: () => true });
    const blocker = b.submit([1]);
    const slow = b.submit([2], { deadlineMs: 20 });
    const other = b.submit([3]);
    calls[0]!.finish();
    await blocker;
    await settle();
    assert.deepEqual(calls[1]!.items, [2, 3], 'started in time, shared with another job');
    assert.equal(b.pending, 0);
    // The shared commit stays open past the deadline.
    await rejectsAfterDeadline(slow, writeError(
      WriteOutcomeUnknownError, 'write_outcome_unknown',
      /did not confirm the write within 20 ms; it may still be stored: retry with the same event_id/,
    ));
    calls[1]!.finish();
    assert.deepEqual(await other, [30], 'the commit still completes for the others');
    assert.deepEqual(b.stats, { commits: 2, items: 3, largestCommit: 2 });
  });

  it('refuses a job at once when the queue is full; nothing of it is queued or stored', async (t) => {
    const timers = t.mock.method(globalThis, 'setTimeout');
    const { calls, commit } = controllable();
    const b = new WriteBatcher(commit, { maxItems: 100, maxConcurrent: 1, retryAlone: () => true, maxQueuedItems: 3 });
    const inFlight = b.submit([0, 0, 0, 0]);
    assert.equal(b.queuedItems, 0, 'items in flight do not count');
    const queued = b.submit([1, 2]);
    const refused = b.submit([3, 4], { deadlineMs: 60_000 });
    await assert.rejects(refused, writeError(WriteQueueFullError, 'write_queue_full', /queue is full.*retry later/));
    assert.equal(calls.length, 1, 'refused while the first commit is still open');
    assert.equal(timers.mock.calls.filter((c) => c.arguments[1] === 60_000).length, 0, 'no timer for a refused job');
    assert.equal(b.pending, 1);
    assert.equal(b.queuedItems, 2);
    const fits = b.submit([5]);
    assert.equal(b.queuedItems, 3, 'a job that exactly fills the queue is accepted');
    calls[0]!.finish();
    await inFlight;
    await settle();
    assert.deepEqual(calls[1]!.items, [1, 2, 5]);
    calls[1]!.finish();
    assert.deepEqual(await Promise.all([queued, fits]), [[10, 20], [50]]);
    assert.ok(!committedItems(calls).includes(3) && !committedItems(calls).includes(4));
    assert.equal(b.queuedItems, 0);
  });

  it('accepts a job larger than the queue bound when the queue is empty (a retry could never fit it)', async () => {
    const { calls, commit } = controllable();
    const b = new WriteBatcher(commit, { maxItems: 100, maxConcurrent: 1, retryAlone: () => true, maxQueuedItems: 2 });
    const first = b.submit([1]);
    const big = b.submit([2, 3, 4]);
    await assert.rejects(b.submit([5]), WriteQueueFullError);
    calls[0]!.finish();
    await first;
    await settle();
    calls[1]!.finish();
    assert.deepEqual(await big, [20, 30, 40]);
  });

  it('resolves a job that commits before its deadline and clears its unref\'d timer', async (t) => {
    const setTimer = t.mock.method(globalThis, 'setTimeout');
    const clearTimer = t.mock.method(globalThis, 'clearTimeout');
    const { calls, commit } = controllable();
    const b = new WriteBatcher(commit, { maxItems: 100, maxConcurrent: 1, retryAlone: () => true });
    const blocker = b.submit([1], { deadlineMs: 60_000 });
    const queued = b.submit([2], { deadlineMs: 60_000 });
    const timers = setTimer.mock.calls.filter((c) => c.arguments[1] === 60_000).map((c) => c.result as NodeJS.Timeout);
    assert.equal(timers.length, 2);
    for (const timer of timers) assert.equal(timer.hasRef(), false, 'a waiting request does not keep the process alive');
    calls[0]!.finish();
    assert.deepEqual(await blocker, [10]);
    await settle();
    calls[1]!.finish();
    assert.deepEqual(await queued, [20]);
    const cleared = new Set(clearTimer.mock.calls.map((c) => c.arguments[0]));
    for (const timer of timers) assert.ok(cleared.has(timer), 'timer cleared on settle');
  });

  it('still isolates a bad job after a shared failure; a job that expires awaiting its retry is dropped', async () => {
    const { calls, commit } = controllable();
    const b = new WriteBatcher(commit, { maxItems: 100, maxConcurrent: 1, retryAlone: () => true });
    const blocker = b.submit([0]);
    const good = b.submit([1], { deadlineMs: 60_000 });
    const bad = b.submit([13]);
    const late = b.submit([2], { deadlineMs: 20 });
    calls[0]!.finish();
    await blocker;
    await settle();
    assert.deepEqual(calls[1]!.items, [1, 13, 2]);
    calls[1]!.finish(new Error('bad row 13'));
    await settle();
    assert.deepEqual(calls[2]!.items, [1], 'retried alone');
    // [1]'s own commit stays open until [2]'s deadline has fired: the failed shared commit stored
    // nothing of [2] and its own retry has not started, so "not started" is the truth.
    await rejectsAfterDeadline(late, (e) => e instanceof WriteNotStartedError);
    calls[2]!.finish();
    assert.deepEqual(await good, [10]);
    await settle();
    assert.deepEqual(calls[3]!.items, [13]);
    calls[3]!.finish(new Error('bad row 13'));
    await assert.rejects(bad, /bad row 13/);
    await settle();
    assert.equal(calls.length, 4, 'the expired job is not retried');
  });

  it('does not retry alone a job already answered "outcome unknown" when its shared commit fails', async () => {
    const { calls, commit } = controllable();
    const b = new WriteBatcher(commit, { maxItems: 100, maxConcurrent: 1, retryAlone: () => true });
    const blocker = b.submit([0]);
    const good = b.submit([1]);
    const slow = b.submit([2], { deadlineMs: 20 });
    calls[0]!.finish();
    await blocker;
    await settle();
    assert.deepEqual(calls[1]!.items, [1, 2]);
    await rejectsAfterDeadline(slow, (e) => e instanceof WriteOutcomeUnknownError);
    calls[1]!.finish(new Error('serialization failure'));
    await settle();
    assert.deepEqual(calls[2]!.items, [1]);
    calls[2]!.finish();
    assert.deepEqual(await good, [10]);
    await settle();
    assert.equal(calls.length, 3, 'the job answered "unknown" is not committed after its caller gave up');
  });

  it('rejects a deadline that is not positive', async () => {
    const b = new WriteBatcher(async (items: number[]) => items, { maxItems: 100, maxConcurrent: 1, retryAlone: () => true });
    await assert.rejects(b.submit([1], { deadlineMs: 0 }), RangeError);
    assert.equal(b.pending, 0);
  });
});

