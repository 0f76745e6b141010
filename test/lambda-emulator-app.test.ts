/**
 * The packaged service in the local Lambda emulator, over real HTTP through the console-shaped
 * base URL (/default/mlops-service-lambda): cold then warm, cold again after reaping, several
 * environments under concurrent load, and identical business series through any environment.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEmulator, type EmulatorHandle } from '../tools/lambda-emulator/emulator.ts';
import { makeEvents } from './helpers/events.ts';
import { businessSeries, call } from './helpers/http.ts';
import { buildLambdaPackage } from './helpers/package.ts';
import { createMigratedTestDatabase, skipPostgres, type TestDatabase } from './helpers/postgres.ts';

describe('packaged service in the Lambda emulator', { skip: skipPostgres }, () => {
  let db: TestDatabase;
  let emulator: EmulatorHandle;
  const logs: string[] = [];

  before(async () => {
    const { zip } = buildLambdaPackage();
    db = await createMigratedTestDatabase('emu');
    emulator = await startEmulator({
      artifact: zip,
      maxConcurrency: 4,
      idleReapMs: 600_000,
      environment: { DATABASE_URL: db.url, LOG_LEVEL: 'warn', POWERTOOLS_METRICS_DISABLED: 'true' },
      log: (line) => logs.push(line),
    });
  });
  after(async () => {
    await emulator?.stop();
    await db?.drop();
  });

  it('serves the base URL a console-made API gives, cold first and warm after', async () => {
    assert.match(emulator.baseUrl, /\/default\/mlops-service-lambda$/);
    const first = await call(`${emulator.baseUrl}/health`);
    const second = await call(`${emulator.baseUrl}/health`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-cold-start'), 'true');
    assert.equal(second.headers.get('x-cold-start'), 'false');
    assert.equal(first.headers.get('x-instance-id'), second.headers.get('x-instance-id'));
    assert.equal(first.body.runtime.name, 'lambda');
    const index = await call(`${emulator.baseUrl}/`);
    assert.equal(index.body.endpoints.track, 'POST /default/mlops-service-lambda/track', 'links carry the prefix');
    await emulator.settled();
    const reports = emulator.records().slice(0, 2);
    assert.ok(reports[0]!.cold && reports[0]!.initDurationMs! > 0);
    assert.match(reports[0]!.reportLine!, /Init Duration: [\d.]+ ms/);
    assert.equal(reports[1]!.cold, false);
    assert.doesNotMatch(reports[1]!.reportLine!, /Init Duration/);
  });

  it('is cold again after its idle environment is reaped', async () => {
    const before = (await call(`${emulator.baseUrl}/health`)).headers.get('x-instance-id');
    assert.ok((await emulator.reapIdle()) >= 1);
    const after = await call(`${emulator.baseUrl}/health`);
    assert.equal(after.headers.get('x-cold-start'), 'true');
    assert.notEqual(after.headers.get('x-instance-id'), before);
  });

  it('starts more environments under concurrent load and every one prints the same business series', async () => {
    const events = makeEvents(40, 77, ['emu-dental', 'emu-law']);
    // Four clients at a time: the function's concurrency limit here (more would be throttled).
    const answers: Awaited<ReturnType<typeof call>>[] = [];
    const queue = [...events];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let e = queue.shift(); e; e = queue.shift()) answers.push(await call(`${emulator.baseUrl}/track`, { method: 'POST', json: e }));
      }),
    );
    assert.ok(answers.every((a) => a.status === 200), JSON.stringify(answers.find((a) => a.status !== 200)?.body));
    const environments = new Set(answers.map((a) => a.headers.get('x-instance-id')));
    assert.ok(environments.size >= 2, `40 concurrent requests used ${environments.size} environment(s)`);

    const scrapes = await Promise.all(Array.from({ length: 4 }, () => call(`${emulator.baseUrl}/metrics`)));
    const servedBy = new Set(scrapes.map((s) => s.headers.get('x-instance-id')));
    assert.ok(servedBy.size >= 2, 'scrapes reached several environments');
    const series = new Set(scrapes.map((s) => businessSeries(s.text)));
    assert.equal(series.size, 1, 'every environment prints identical business series');
    const total = [...scrapes[0]!.text.matchAll(/^ai_requests_total\{business_id="emu-[^"]+".*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    assert.equal(total, 40);
    const stats = emulator.runtimeStats();
    assert.ok(stats.peakConcurrency >= 2);
    assert.ok(stats.coldStarts >= 3);
  });

  it('answers an EventBridge warm-up through the Invoke API without counting a request', async () => {
    const result = await emulator.invoke({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} });
    assert.equal(result.kind, 'success');
    const payload = JSON.parse(result.payload);
    assert.equal(payload.status, 'warm');
    assert.equal(payload.database, 'connected');
  });
});
