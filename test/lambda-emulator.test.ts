// Drives the local API Gateway + Lambda emulator over real HTTP with the fixture handlers in
// test/fixtures/lambda-handlers. Run: node --import tsx --test --test-reporter=spec test/lambda-emulator.test.ts
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { zipSync } from 'fflate';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../tools/lambda-emulator/emulator.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const ECHO = path.join(here, 'fixtures/lambda-handlers/echo');
const INIT_ERROR = path.join(here, 'fixtures/lambda-handlers/init-error');
const SCHEDULED_EVENT = path.resolve(here, 'fixtures/lambda-events/eventbridge-scheduled-event-aws-docs.json');

const started: EmulatorHandle[] = [];
const seenPids = new Set<number>();

/** Start an emulator whose log lines are kept (and echoed when LAMBDA_EMULATOR_DEBUG is set). */
async function start(options: Partial<EmulatorOptions> = {}): Promise<{ emu: EmulatorHandle; logs: string[] }> {
  const logs: string[] = [];
  const emu = await startEmulator({
    artifact: ECHO,
    log: (line) => {
      logs.push(line);
      if (process.env.LAMBDA_EMULATOR_DEBUG) process.stderr.write(`${line}\n`);
    },
    ...options,
  });
  started.push(emu);
  return { emu, logs };
}

interface RawResponse { status: number; rawHeaders: string[]; headers: http.IncomingHttpHeaders; body: Buffer }

/** node:http rather than fetch, to send repeated header lines and to see every Set-Cookie line. */
function request(url: string, init: { method?: string; headers?: string[]; body?: Buffer | string } = {}): Promise<RawResponse> {
  // With raw (array) headers Node adds no defaults, so Host and Content-Length are set here.
  const { host } = new URL(url);
  const headers = ['Host', host, ...(init.body !== undefined ? ['Content-Length', String(Buffer.byteLength(init.body))] : []), ...(init.headers ?? [])];
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

async function json(url: string, init?: Parameters<typeof request>[1]): Promise<{ status: number; data: any; res: RawResponse }> {
  const res = await request(url, init);
  const data = JSON.parse(res.body.toString('utf8'));
  if (typeof data?.pid === 'number') seenPids.add(data.pid);
  return { status: res.status, data, res };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

after(async () => {
  await Promise.all(started.map((e) => e.stop()));
});

describe('HTTP API front (console shape: stage "default", route prefix /mlops-service-lambda)', () => {
  let emu: EmulatorHandle;
  let logs: string[];
  before(async () => {
    ({ emu, logs } = await start({ environment: { GREETING: 'hello' } }));
  });

  test('builds a payload 2.0 event the way API Gateway does', async () => {
    const binary = Buffer.from([0, 1, 2, 253, 254, 255]);
    const { status, data } = await json(`${emu.baseUrl}/echo?model=gpt-4o&model=claude&from=2024-01-01T00%3A00%3A00Z`, {
      method: 'POST',
      headers: ['Cookie', 'session=abc; theme=dark', 'X-Multi', 'one', 'X-Multi', 'two', 'Content-Type', 'application/octet-stream', 'User-Agent', 'emulator-test'],
      body: binary,
    });
    assert.equal(status, 200);
    const event = data.event;
    assert.equal(event.version, '2.0');
    assert.equal(event.routeKey, 'ANY /mlops-service-lambda/{proxy+}');
    assert.equal(event.rawPath, '/default/mlops-service-lambda/echo');
    assert.equal(event.rawQueryString, 'model=gpt-4o&model=claude&from=2024-01-01T00%3A00%3A00Z');
    assert.deepEqual(event.cookies, ['session=abc', 'theme=dark']);
    assert.equal(event.headers.cookie, undefined, 'cookies move out of headers');
    assert.equal(event.headers['x-multi'], 'one,two');
    assert.equal(event.headers['content-type'], 'application/octet-stream');
    assert.deepEqual(event.queryStringParameters, { model: 'gpt-4o,claude', from: '2024-01-01T00:00:00Z' });
    assert.deepEqual(event.pathParameters, { proxy: 'echo' });
    assert.equal(event.isBase64Encoded, true);
    assert.deepEqual(Buffer.from(event.body, 'base64'), binary);
    const rc = event.requestContext;
    assert.equal(rc.stage, 'default');
    assert.equal(rc.routeKey, event.routeKey);
    assert.equal(rc.accountId, '123456789012');
    assert.match(rc.apiId, /^[a-z0-9]{10}$/);
    assert.equal(rc.domainName, '127.0.0.1');
    assert.deepEqual(rc.http, { method: 'POST', path: '/default/mlops-service-lambda/echo', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'emulator-test' });
    assert.match(rc.time, /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
    assert.equal(typeof rc.timeEpoch, 'number');
    assert.match(rc.requestId, /^[A-Za-z0-9+/]{15}=$/);

    // Lambda's environment and context, and nothing of the emulator's own environment.
    assert.equal(data.env.AWS_EXECUTION_ENV, 'AWS_Lambda_nodejs22.x');
    assert.equal(data.env.AWS_LAMBDA_FUNCTION_VERSION, '$LATEST');
    assert.equal(data.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, '512');
    assert.equal(data.env.AWS_LAMBDA_INITIALIZATION_TYPE, 'on-demand');
    assert.equal(data.env._HANDLER, 'index.handler');
    assert.equal(data.env.TZ, ':UTC');
    assert.equal(data.env.GREETING, 'hello');
    assert.equal(data.env.HOME, null);
    assert.equal(data.env.LAMBDA_TASK_ROOT, emu.taskRoot);
    assert.match(data.env._X_AMZN_TRACE_ID, /^Root=1-/);
    assert.equal(data.context.functionName, 'mlops-service-lambda');
    assert.equal(data.context.memoryLimitInMB, '512');
    assert.equal(data.context.invokedFunctionArn, 'arn:aws:lambda:us-east-1:123456789012:function:mlops-service-lambda');
    assert.ok(data.context.remainingMs > 25_000 && data.context.remainingMs <= 30_000);
  });

  test('text bodies stay text; the exact route has no proxy parameter', async () => {
    const { data } = await json(emu.baseUrl, { method: 'POST', headers: ['Content-Type', 'application/json; charset=utf-8'], body: '{"a":1}' });
    assert.equal(data.event.routeKey, 'ANY /mlops-service-lambda');
    assert.equal(data.event.rawPath, '/default/mlops-service-lambda');
    assert.equal(data.event.pathParameters, undefined);
    assert.equal(data.event.isBase64Encoded, false);
    assert.equal(data.event.body, '{"a":1}');
    assert.equal(data.event.queryStringParameters, undefined);
  });

  test('requests outside the stage and route prefix get API Gateway\'s 404', async () => {
    for (const p of ['/other', '/default/other', '/mlops-service-lambda/health', '/default/mlops-service-lambdax']) {
      const res = await request(`${emu.url}${p}`);
      assert.equal(res.status, 404, p);
      assert.equal(res.body.toString(), '{"message":"Not Found"}');
    }
  });

  test('cold first request, warm second in the same process; REPORT has Init Duration only when cold', async () => {
    await emu.reapIdle();
    await emu.settled();
    const before = emu.records().length;
    const first = await json(`${emu.baseUrl}/health`);
    const second = await json(`${emu.baseUrl}/health`);
    await emu.settled();
    assert.equal(first.data.cold, true);
    assert.equal(first.res.headers['x-cold-start'], 'true');
    assert.equal(second.data.cold, false);
    assert.equal(second.data.pid, first.data.pid);
    const [r1, r2] = emu.records().slice(before);
    assert.ok(r1 && r2);
    assert.equal(r1.cold, true);
    assert.ok((r1.initDurationMs ?? 0) > 0);
    assert.equal(r1.billedDurationMs, Math.ceil(r1.durationMs + (r1.initDurationMs ?? 0)));
    assert.match(r1.reportLine ?? '', /^REPORT RequestId: \S+\tDuration: \d+\.\d{2} ms\tBilled Duration: \d+ ms\tMemory Size: 512 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d{2} ms$/);
    assert.equal(r2.cold, false);
    assert.equal(r2.initDurationMs, null);
    assert.doesNotMatch(r2.reportLine ?? '', /Init Duration/);
    assert.ok(logs.includes(r1.reportLine ?? '') && logs.includes(r2.reportLine ?? ''));
    assert.ok(logs.some((l) => l.startsWith(`START RequestId: ${r2.requestId} Version: $LATEST`)));
    assert.ok(logs.some((l) => l === `END RequestId: ${r2.requestId}`));
    assert.ok(logs.some((l) => l.includes(`\t${r2.requestId}\tINFO\thandling health cold: false`)), 'console output is prefixed like the managed runtime');
    const env = emu.environments().find((e) => e.pid === first.data.pid);
    assert.equal(env?.state, 'idle');
    assert.equal(env?.frozen, true, 'idle environments are frozen (SIGSTOP)');
  });

  test('reapIdle() makes the next request a cold start in a new process', async () => {
    const warm = await json(`${emu.baseUrl}/health`);
    assert.ok((await emu.reapIdle()) >= 1);
    assert.equal(alive(warm.data.pid), false);
    const next = await json(`${emu.baseUrl}/health`);
    assert.equal(next.data.cold, true);
    assert.notEqual(next.data.pid, warm.data.pid);
    assert.ok(emu.runtimeStats().environmentsReaped >= 1);
  });

  test('two concurrent slow requests run in two environments', async () => {
    const [a, b] = await Promise.all([json(`${emu.baseUrl}/sleep?ms=400`), json(`${emu.baseUrl}/sleep?ms=400`)]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.notEqual(a.data.pid, b.data.pid);
    assert.ok(emu.runtimeStats().peakConcurrency >= 2);
  });

  test('a thrown handler gives 500 {"message":"Internal Server Error"} (HTTP API, not REST\'s 502)', async () => {
    const res = await request(`${emu.baseUrl}/throw`);
    assert.equal(res.status, 500);
    assert.equal(res.body.toString(), '{"message":"Internal Server Error"}');
    assert.ok(res.headers['apigw-requestid']);
    await emu.settled();
    const record = emu.records().at(-1);
    assert.equal(record?.status, 'error');
    assert.equal(record?.errorType, 'TypeError');
    assert.ok(logs.some((l) => l.includes('ERROR\tInvoke Error {"errorType":"TypeError","errorMessage":"boom from the handler"')));
  });

  test('maps 2.0 responses: base64 bodies, cookies, inference rule, invalid and oversized results', async () => {
    const bin = await request(`${emu.baseUrl}/binary`);
    assert.equal(bin.status, 201);
    assert.deepEqual(bin.body, Buffer.from([0, 1, 2, 254, 255]));
    assert.equal(bin.headers['content-type'], 'application/octet-stream');
    assert.equal(bin.headers['x-custom'], 'yes');
    const setCookies = bin.rawHeaders.filter((_, i) => i % 2 === 0 && bin.rawHeaders[i]?.toLowerCase() === 'set-cookie').length;
    assert.equal(setCookies, 2, 'one Set-Cookie line per cookie');
    assert.deepEqual(bin.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly']);

    const raw = await request(`${emu.baseUrl}/raw`);
    assert.equal(raw.status, 200);
    assert.equal(raw.headers['content-type'], 'application/json');
    assert.equal(raw.body.toString(), 'plain string result');
    const obj = await request(`${emu.baseUrl}/object`);
    assert.equal(obj.status, 200);
    assert.deepEqual(JSON.parse(obj.body.toString()), { hello: 'world' });

    const bad = await request(`${emu.baseUrl}/bad-status`);
    assert.equal(bad.status, 500);
    const big = await request(`${emu.baseUrl}/big`);
    assert.equal(big.status, 500);
    await emu.settled();
    assert.equal(emu.records().at(-1)?.errorType, 'Function.ResponseSizeTooLarge');
  });

  test('serves the Lambda Invoke API on the same port (non-HTTP events)', async () => {
    const scheduled = readFileSync(SCHEDULED_EVENT, 'utf8');
    const res = await request(`${emu.url}/2015-03-31/functions/mlops-service-lambda/invocations`, { method: 'POST', body: scheduled });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-amz-function-error'], undefined);
    const payload = JSON.parse(res.body.toString());
    assert.equal(payload.statusCode, 200);
    assert.equal(JSON.parse(payload.body).event['detail-type'], 'Scheduled Event');

    const failed = await request(`${emu.url}/2015-03-31/functions/mlops-service-lambda/invocations`, { method: 'POST', body: '{"action":"throw"}' });
    assert.equal(failed.status, 200);
    assert.equal(failed.headers['x-amz-function-error'], 'Unhandled');
    const error = JSON.parse(failed.body.toString());
    assert.equal(error.errorType, 'TypeError');
    assert.equal(error.errorMessage, 'boom from the handler');
    assert.ok(Array.isArray(error.trace));

    const missing = await request(`${emu.url}/2015-03-31/functions/other-function/invocations`, { method: 'POST', body: '{}' });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['x-amzn-errortype'], 'ResourceNotFoundException');

    const direct = await emu.invoke({ action: 'object' });
    assert.equal(direct.kind, 'success');
    assert.deepEqual(JSON.parse(direct.payload), { hello: 'world' });
    assert.equal(direct.record.source, 'invoke');
  });
});

describe('limits', () => {
  test('the function timeout is enforced: environment killed, "Task timed out after 1.00 seconds"', async () => {
    const { emu, logs } = await start({ timeoutSec: 1 });
    const t0 = performance.now();
    const res = await request(`${emu.baseUrl}/sleep?ms=3000`);
    const elapsed = performance.now() - t0;
    assert.equal(res.status, 500);
    assert.equal(res.body.toString(), '{"message":"Internal Server Error"}');
    assert.ok(elapsed < 2900, `answered after ${elapsed.toFixed(0)} ms`);
    await emu.settled();
    const record = emu.records().at(-1);
    assert.equal(record?.status, 'timeout');
    assert.equal(record?.errorType, 'Sandbox.Timedout');
    assert.equal(record?.durationMs, 1000);
    assert.ok(logs.some((l) => l.endsWith(`${record?.requestId} Task timed out after 1.00 seconds`)));
    assert.match(record?.reportLine ?? '', /\tStatus: timeout$/);
    assert.ok(record?.pid && !alive(record.pid));
    const after = await json(`${emu.baseUrl}/health`);
    assert.equal(after.data.cold, true, 'a timed-out environment is replaced');
  });

  test('the memory size is enforced: "Runtime exited with error: signal: killed"', async () => {
    const { emu, logs } = await start({ memoryMb: 128, timeoutSec: 10 });
    const res = await request(`${emu.baseUrl}/alloc?mb=256`);
    assert.equal(res.status, 500);
    await emu.settled();
    const record = emu.records().at(-1);
    assert.equal(record?.status, 'out-of-memory');
    assert.equal(record?.maxMemoryUsedMb, 128);
    assert.match(record?.errorMessage ?? '', /Runtime exited with error: signal: killed/);
    assert.ok(logs.some((l) => l.includes('Error: Runtime exited with error: signal: killed')));
    assert.match(record?.reportLine ?? '', /Memory Size: 128 MB\tMax Memory Used: 128 MB/);
  });

  test('beyond maxConcurrency requests are throttled', async () => {
    const { emu } = await start({ maxConcurrency: 1 });
    const [a, b] = await Promise.all([request(`${emu.baseUrl}/sleep?ms=500`), request(`${emu.baseUrl}/sleep?ms=500`)]);
    assert.deepEqual([a.status, b.status].sort(), [200, 500]);
    assert.equal(emu.runtimeStats().throttles, 1);
    const slow = request(`${emu.baseUrl}/sleep?ms=300`);
    await new Promise((r) => setTimeout(r, 50));
    const invoke = await request(`${emu.url}/2015-03-31/functions/mlops-service-lambda/invocations`, { method: 'POST', body: '{}' });
    assert.equal(invoke.status, 429);
    assert.equal(invoke.headers['x-amzn-errortype'], 'TooManyRequestsException');
    assert.equal((await slow).status, 200);
  });

  test('an init failure fails the invocation with the init error', async () => {
    const { emu, logs } = await start({ artifact: INIT_ERROR });
    const res = await request(`${emu.baseUrl}/health`);
    assert.equal(res.status, 500);
    await emu.settled();
    const record = emu.records().at(-1);
    assert.equal(record?.status, 'init-error');
    assert.equal(record?.errorType, 'Error');
    assert.equal(record?.errorMessage, 'init failed on purpose');
    assert.ok(logs.some((l) => /^INIT_REPORT Init Duration: \d+\.\d{2} ms\tPhase: init\tStatus: error\tError Type: Error$/.test(l)));
    const invoke = await request(`${emu.url}/2015-03-31/functions/mlops-service-lambda/invocations`, { method: 'POST', body: '{}' });
    assert.equal(invoke.headers['x-amz-function-error'], 'Unhandled');
    assert.equal(JSON.parse(invoke.body.toString()).errorMessage, 'init failed on purpose');
    assert.equal(emu.environments().length, 0);
  });

  test('refuses reserved environment variables, as Lambda does', async () => {
    await assert.rejects(startEmulator({ artifact: ECHO, environment: { AWS_REGION: 'eu-west-1' } }), /reserved keys.*AWS_REGION/);
  });
});

describe('artifacts and handler settings', () => {
  test('runs a .zip artifact with lambda_function.lambda_handler behind $default stage and route', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lambda-emulator-zip-'));
    try {
      const files = Object.fromEntries(readdirSync(ECHO).map((f) => [f, new Uint8Array(readFileSync(path.join(ECHO, f)))]));
      const zip = path.join(dir, 'lambda-deployment.zip');
      writeFileSync(zip, zipSync(files));
      const { emu } = await start({ artifact: zip, handler: 'lambda_function.lambda_handler', stage: '$default', routePrefix: '' });
      assert.equal(emu.baseUrl, emu.url);
      const { status, data } = await json(`${emu.url}/metrics?x=1`);
      assert.equal(status, 200);
      assert.equal(data.event.routeKey, '$default');
      assert.equal(data.event.rawPath, '/metrics');
      assert.equal(data.event.requestContext.stage, '$default');
      assert.equal(data.env._HANDLER, 'lambda_function.lambda_handler');
      assert.ok(existsSync(path.join(emu.taskRoot, 'index.mjs')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a CommonJS callback handler replies once the event loop is empty', async () => {
    const { emu } = await start({ handler: 'callback.handler' });
    const result = await emu.invoke({});
    assert.equal(result.kind, 'success');
    const body = JSON.parse(JSON.parse(result.payload).body);
    assert.equal(body.style, 'callback');
    assert.equal(body.flushedBeforeReply, true);
  });
});

describe('the Node it runs on', () => {
  /** A function that reports what its process sees, written to a temporary folder. */
  function reportingFunction(dir: string): string {
    const artifact = path.join(dir, 'artifact');
    mkdirSync(artifact);
    writeFileSync(
      path.join(artifact, 'index.mjs'),
      'export const handler = async () => ({ version: process.version, wrapped: process.env.WRAPPED_NODE ?? null, extraCa: process.env.NODE_EXTRA_CA_CERTS ?? null });\n',
    );
    return artifact;
  }

  test('runs environments on the Node given as `node`, and says which in INIT_START', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lambda-emulator-node-'));
    try {
      // A wrapper that marks the environment, so the test sees which executable started it.
      const wrapper = path.join(dir, 'node-wrapper');
      writeFileSync(wrapper, `#!/bin/sh\nWRAPPED_NODE=yes exec ${JSON.stringify(process.execPath)} "$@"\n`);
      chmodSync(wrapper, 0o755);
      const { emu, logs } = await start({ artifact: reportingFunction(dir), node: wrapper });
      assert.equal(emu.node.path, wrapper);
      assert.equal(emu.node.version, process.version);
      const result = await emu.invoke({});
      assert.equal(result.kind, 'success');
      assert.deepEqual(JSON.parse(result.payload), { version: process.version, wrapped: 'yes', extraCa: null });
      assert.ok(logs.some((l) => l.startsWith('INIT_START') && l.includes(`Node ${process.version}`)), logs.join('\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("never passes the host's NODE_EXTRA_CA_CERTS (Lambda's Node 20+ runtimes do not set it); the function's own setting wins", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lambda-emulator-ca-'));
    const saved = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = '/etc/ssl/certs/ca-certificates.crt';
    try {
      const artifact = reportingFunction(dir);
      const bare = await start({ artifact });
      assert.equal(JSON.parse((await bare.emu.invoke({})).payload).extraCa, null);
      const configured = await start({ artifact, environment: { NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt' } });
      assert.equal(JSON.parse((await configured.emu.invoke({})).payload).extraCa, '/etc/ssl/certs/ca-certificates.crt');
    } finally {
      if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('shutdown', () => {
  test('stop() leaves no child processes and removes the task root', async () => {
    for (const emu of started) for (const env of emu.environments()) if (env.pid) seenPids.add(env.pid);
    for (const emu of started) for (const r of emu.records()) if (r.pid) seenPids.add(r.pid);
    assert.ok(seenPids.size >= 5);
    const roots = started.map((e) => e.taskRoot);
    await Promise.all(started.map((e) => e.stop()));
    for (const pid of seenPids) assert.equal(alive(pid), false, `pid ${pid} still alive`);
    for (const root of roots) assert.equal(existsSync(root), false);
  });
});
