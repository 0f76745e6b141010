// `npm run lambda:local`: serve the packaged Lambda artifact behind a local API Gateway HTTP API.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEmulator, type EmulatorHandle } from './emulator.ts';
import { LAMBDA_NODE_MAJOR } from '../shared/node-runtime.ts';

const HELP = `Usage: npm run lambda:local -- [options]

Runs the packaged Lambda artifact the way AWS does: an API Gateway HTTP API front (payload 2.0)
and execution environments that are separate Node processes speaking the Lambda Runtime API,
frozen between requests, reaped when idle (the next request is then a cold start), with the
function timeout and memory size enforced and a CloudWatch-style REPORT line per invocation.

Options:
  --artifact <path>          Directory or .zip whose root holds the handler module
                             (default: dist/lambda-deployment.zip, built by \`npm run package\`)
  --handler <module.export>  Lambda handler setting (default: index.handler;
                             the console setting lambda_function.lambda_handler also works)
  --port <n>                 Port on 127.0.0.1 (default: 3001; 0 picks a free one)
  --stage <name>             API stage (default: default, as the Lambda console creates it;
                             $default means no stage segment in the URL)
  --route-prefix <path>      Route prefix (default: /mlops-service-lambda, the console's
                             ANY /<function-name>; '' for a catch-all $default route)
  --no-proxy-route           Only the exact route, no ANY <prefix>/{proxy+} (sub-paths then 404,
                             which is what a console-made API without a {proxy+} route does)
  --function-name <name>     Function name (default: mlops-service-lambda)
  --memory <MB>              Memory size, 128-10240 (default: 512)
  --timeout <seconds>        Function timeout, 1-900 (default: 30)
  --idle-reap <seconds>      Idle time after which an environment is reaped (default: 300)
  --max-concurrency <n>      Concurrent environments before requests are throttled (default: 10)
  --region <region>          AWS_REGION seen by the function (default: us-east-1)
  --node <major|host|path>   Node the environments run on (default: ${LAMBDA_NODE_MAJOR}, what nodejs${LAMBDA_NODE_MAJOR}.x
                             runs, installed from the npm registry into .cache/node-${LAMBDA_NODE_MAJOR}/ on
                             first use; host: this machine's Node)
  --env KEY=VALUE            Function environment variable (repeatable)
  --env-file <path>          Read KEY=VALUE lines from a file (# comments, optional quotes);
                             --env wins over the file
  --quiet                    Do not print the function's logs
  -h, --help                 Show this help

Example:
  npm run package
  npm run lambda:local -- --env DATABASE_URL=postgres://user:pass@localhost:5432/mlops --timeout 10
  curl http://127.0.0.1:3001/default/mlops-service-lambda/health
`;

function fail(message: string): never {
  process.stderr.write(`lambda:local: ${message}\n`);
  process.exit(1);
}

function parseEnvLines(text: string, source: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [i, rawLine] of text.split(/\r?\n/).entries()) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) fail(`${source}:${i + 1}: expected KEY=VALUE`);
    let value = m[2] ?? '';
    const quoted = /^(['"])(.*)\1$/.exec(value);
    if (quoted) value = quoted[1] === '"' ? (quoted[2] ?? '').replace(/\\n/g, '\n') : quoted[2] ?? '';
    else value = value.replace(/\s+#.*$/, '');
    env[m[1] ?? ''] = value;
  }
  return env;
}

function intOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} expects a whole number, got "${value}"`);
  return n;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      artifact: { type: 'string' },
      handler: { type: 'string' },
      port: { type: 'string' },
      stage: { type: 'string' },
      'route-prefix': { type: 'string' },
      'no-proxy-route': { type: 'boolean' },
      'function-name': { type: 'string' },
      memory: { type: 'string' },
      timeout: { type: 'string' },
      'idle-reap': { type: 'string' },
      'max-concurrency': { type: 'string' },
      region: { type: 'string' },
      node: { type: 'string' },
      env: { type: 'string', multiple: true },
      'env-file': { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  fail(`${(err as Error).message}\nRun with --help for the options.`);
}

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const artifact = values.artifact ?? 'dist/lambda-deployment.zip';
if (!existsSync(artifact)) {
  fail(values.artifact
    ? `artifact not found: ${artifact}`
    : `no Lambda package at ${artifact}. Run \`npm run package\` first (or pass --artifact <dir|zip>).`);
}

const environment: Record<string, string> = {};
if (values['env-file']) {
  if (!existsSync(values['env-file'])) fail(`env file not found: ${values['env-file']}`);
  Object.assign(environment, parseEnvLines(readFileSync(values['env-file'], 'utf8'), values['env-file']));
}
for (const pair of values.env ?? []) {
  const eq = pair.indexOf('=');
  if (eq <= 0) fail(`--env expects KEY=VALUE, got "${pair}"`);
  environment[pair.slice(0, eq)] = pair.slice(eq + 1);
}

const quiet = values.quiet ?? false;
let emulator: EmulatorHandle;
try {
  emulator = await startEmulator({
    artifact,
    ...(values.handler ? { handler: values.handler } : {}),
    port: intOption(values.port, 'port', 3001),
    ...(values.stage !== undefined ? { stage: values.stage } : {}),
    ...(values['route-prefix'] !== undefined ? { routePrefix: values['route-prefix'] } : {}),
    proxyRoute: !values['no-proxy-route'],
    ...(values['function-name'] ? { functionName: values['function-name'] } : {}),
    memoryMb: intOption(values.memory, 'memory', 512),
    timeoutSec: intOption(values.timeout, 'timeout', 30),
    idleReapMs: intOption(values['idle-reap'], 'idle-reap', 300) * 1000,
    maxConcurrency: intOption(values['max-concurrency'], 'max-concurrency', 10),
    ...(values.region ? { region: values.region } : {}),
    node: values.node ?? LAMBDA_NODE_MAJOR,
    environment,
    log: (line, meta) => {
      if (quiet && meta.source === 'function') return;
      const tag = meta.source === 'emulator' ? 'emulator' : meta.environmentId ?? 'lambda';
      for (const l of line.split('\n')) process.stderr.write(`[${tag}] ${l}\n`);
    },
  });
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  fail(e.code === 'EADDRINUSE' ? `port ${values.port ?? 3001} is in use; pick another with --port` : e.message);
}

const base = emulator.baseUrl;
const invokeUrl = `${emulator.url}/2015-03-31/functions/${emulator.functionName}/invocations`;
process.stdout.write(`
Lambda emulator running ${path.relative(process.cwd(), path.resolve(artifact)) || artifact} (handler ${values.handler ?? 'index.handler'}) on Node ${emulator.node.version}

  MLOPS_SERVICE_URL=${base}

Try:
  curl ${base}/health
  curl -X POST ${base}/track -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","prompt_tokens":12,"completion_tokens":34,"latency_ms":456}'
  curl ${base}/metrics
  # a non-HTTP event through the Lambda Invoke API (e.g. an EventBridge schedule):
  curl -X POST ${invokeUrl} -d '{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}'

Logs (START/END/REPORT per invocation) go to stderr. Ctrl-C stops everything.
`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\n[emulator] ${signal}: stopping\n`);
  const s = emulator.runtimeStats();
  process.stderr.write(`[emulator] ${s.invocations} invocations (${s.coldStarts} cold, ${s.warmStarts} warm), ${s.errors} errors, ${s.throttles} throttled, ${s.environmentsStarted} environments started\n`);
  await emulator.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGHUP', () => void shutdown('SIGHUP'));
