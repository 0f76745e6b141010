// Fan-out worker: one process = one Lambda execution environment. Loads a handler module once (the
// packaged service, or the one-INSERT peer), then, told by the parent over IPC, runs a closed loop
// of API Gateway HTTP API v2 `POST /track` events: one request at a time, as Lambda runs one
// environment. Plain JS so the harness adds nothing to load (no tsx, no TypeScript).
//
// argv: <handler module path> <worker id>
// IPC in:  { type: 'init', template, bodies, tag }  then  { type: 'go', startAt, warmupMs, measureMs }
// IPC out: { type: 'loaded' }, { type: 'ready', first }, { type: 'result', ... }, { type: 'fatal', message }
import { pathToFileURL } from 'node:url';

const [modulePath, idArg] = process.argv.slice(2);
const id = Number(idArg);
// The parent gone (crash, SIGKILL): never outlive it.
process.on('disconnect', () => process.exit(1));

const send = (message) => new Promise((resolve) => process.send(message, () => resolve()));
const fatal = async (message) => {
  await send({ type: 'fatal', id, message });
  process.exit(1);
};

let handler;
try {
  ({ handler } = await import(pathToFileURL(modulePath).href));
  if (typeof handler !== 'function') throw new Error(`${modulePath} exports no handler`);
} catch (error) {
  await fatal(`loading ${modulePath}: ${error?.stack ?? error}`);
}

let template;
let bodies;
let tag = 'run';
let counter = 0;

/** A fresh event per request: a unique event_id (run tag, worker id, counter), as API Gateway builds it. */
function nextEvent() {
  const body = bodies[counter % bodies.length];
  body.event_id = `${tag}-w${id}-${counter}`;
  const text = JSON.stringify(body);
  const requestId = `${tag}-w${id}-${counter}`;
  counter++;
  return {
    ...template,
    headers: { ...template.headers, 'content-length': String(Buffer.byteLength(text)) },
    requestContext: { ...template.requestContext, requestId, timeEpoch: Date.now() },
    body: text,
  };
}

const statuses = {};
const errorSamples = [];
let acknowledged = 0;
let duplicates = 0;
let errors = 0;
let lastStatus;

/** One invocation; returns whether it was acknowledged (200, not a duplicate). Never throws. */
async function invoke() {
  const event = nextEvent();
  let status;
  let ack = false;
  let body = '';
  try {
    const result = await handler(event, { awsRequestId: event.requestContext.requestId, getRemainingTimeInMillis: () => 30_000 });
    status = result?.statusCode ?? 'no-status';
    body = typeof result?.body === 'string' ? result.body : '';
    if (status === 200) {
      const text = result.isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;
      const parsed = JSON.parse(text);
      if (parsed.duplicate === false) ack = true;
      else duplicates++;
    }
  } catch (error) {
    status = 'threw';
    body = String(error?.message ?? error);
  }
  statuses[status] = (statuses[status] ?? 0) + 1;
  if (ack) acknowledged++;
  if (status !== 200) {
    errors++;
    if (errorSamples.length < 5) {
      const sample = `${status}: ${body.slice(0, 300)}`;
      if (!errorSamples.includes(sample)) errorSamples.push(sample);
    }
  }
  lastStatus = status;
  return ack;
}

let latencies = new Float64Array(1 << 14);
let measured = 0;
let ackedInWindow = 0;
let warmupRequests = 0;

function record(ms) {
  if (measured === latencies.length) {
    const bigger = new Float64Array(latencies.length * 2);
    bigger.set(latencies);
    latencies = bigger;
  }
  latencies[measured++] = ms;
}

async function run({ startAt, warmupMs, measureMs }) {
  // Date.now() is shared by every process; performance.now() is this process's own clock.
  const offset = performance.now() - Date.now();
  const start = startAt + offset;
  const measureFrom = start + warmupMs;
  const measureUntil = measureFrom + measureMs;
  // A request that never ends must not hold the run: report what there is and leave.
  const watchdog = setTimeout(() => finish(true), startAt - Date.now() + warmupMs + measureMs + 20_000);
  const wait = start - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  while (performance.now() < measureFrom) {
    await invoke();
    warmupRequests++;
  }
  let last = measureFrom;
  while (performance.now() < measureUntil) {
    const t = performance.now();
    const ack = await invoke();
    last = performance.now();
    record(last - t);
    if (ack) ackedInWindow++;
  }
  clearTimeout(watchdog);
  await finish(false, last - measureFrom);
}

let finished = false;
async function finish(hung, elapsedMs = Number.NaN) {
  if (finished) return;
  finished = true;
  await send({
    type: 'result',
    id,
    hung,
    warmupRequests,
    requests: measured,
    ackedInWindow,
    elapsedMs,
    acknowledged,
    duplicates,
    errors,
    statuses,
    errorSamples,
    latencies: latencies.subarray(0, measured),
  });
  process.exit(0);
}

process.on('message', async (message) => {
  if (message.type === 'init') {
    template = message.template;
    bodies = message.bodies;
    tag = message.tag;
    // The first request opens the environment's connection, before the common start.
    await invoke();
    await send({ type: 'ready', id, first: lastStatus, firstError: lastStatus === 200 ? null : (errorSamples[0] ?? null) });
  } else if (message.type === 'go') {
    await run(message);
  }
});
await send({ type: 'loaded', id });
