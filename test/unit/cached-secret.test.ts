/** CachedSecret (Lambda secrets): a value kept once read; failed reads retried with a doubling, capped backoff. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CachedSecret } from '../../src/adapter/lambda/secrets.ts';

describe('CachedSecret', () => {
  it('between failed reads waits 1, 2, 4 s… up to the cap, answering at once meanwhile; keeps the value once read', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 0 });
    let reads = 0;
    let failing = true;
    const secret = new CachedSecret(async () => {
      reads++;
      if (failing) throw new Error('extension answered 503');
      return 'value';
    }, { firstMs: 1000, maxMs: 4000 });

    await assert.rejects(secret.get(), /503/);
    assert.equal(reads, 1);
    // Each wait doubles, capped at 4 s; inside it, get() fails with the last error and reads nothing.
    for (const wait of [1000, 2000, 4000, 4000]) {
      t.mock.timers.tick(wait - 1);
      await assert.rejects(secret.get(), /failed \d+ times in a row; next attempt in 1 s/);
      const readsBefore: number = reads;
      t.mock.timers.tick(1);
      await assert.rejects(secret.get(), /503/);
      assert.equal(reads, readsBefore + 1, `a read after ${wait} ms`);
    }
    failing = false;
    t.mock.timers.tick(4000);
    assert.equal(await secret.get(), 'value');
    assert.equal(await secret.get(), 'value');
    assert.equal(reads, 6, 'kept: read once after it succeeded');
    assert.equal(await secret.refresh(), 'value');
    assert.equal(reads, 7, 'refresh() reads again');
  });
});
