/**
 * Local stand-in for "API Gateway HTTP API (payload 2.0) + AWS Lambda (Node.js managed runtime)".
 *
 * It runs a packaged artifact (a directory or a .zip whose root holds e.g. index.mjs) the way Lambda
 * does: every execution environment is a separate `node bootstrap.mjs` process with its own Runtime
 * API server, one invocation at a time, frozen (SIGSTOP) between invocations, reaped when idle, with
 * the function timeout, the memory size and the 10 s init limit enforced, CloudWatch-style
 * START/END/REPORT lines, and structured records of every invocation for benchmarks.
 *
 * The HTTP front behaves like an HTTP API with a Lambda proxy integration: request → 2.0 event
 * (stage + route prefix, cookies, comma-joined repeated headers/query keys, base64 for non-text
 * bodies), result → HTTP response (2.0 inference rule, cookies → Set-Cookie, base64 bodies), and
 * API Gateway's own error answers. The Lambda Invoke API is served on the same port.
 *
 * Children run the Node given as `node` (a major such as 22, installed from the npm registry on
 * demand, `host`, or a path; the CLI defaults to 22, what `nodejs22.x` runs), with the environment
 * and V8 flags of the managed runtime and nothing else from the host's environment.
 *
 * What it does NOT emulate (know this before trusting a green local run):
 * - The exact runtime build: the Node patch release is npm's latest 22.x, not AWS's; no Amazon Linux,
 *   no /var/task (the task root is a temp copy, and it is writable).
 * - CPU scaling with memory (Lambda gives ~1 vCPU per 1,769 MB), network/VPC, /tmp size limits,
 *   SnapStart, provisioned concurrency, layers (/opt), extensions, response streaming, X-Ray.
 * - IAM: no AWS credentials are injected; API Gateway authorizers, throttling/quotas, custom domains,
 *   stage variables, CORS configuration, mTLS and access logs.
 * - Lambda's warm-pool heuristics: environments are picked most-recently-used first and reaped after
 *   a fixed idle time; AWS's real keep-alive time is unpublished and varies.
 * - Exact platform log formats beyond START/END/REPORT/INIT_START/INIT_REPORT (text format only).
 * - Max Memory Used is the child's peak RSS (VmHWM), Linux only; elsewhere memory is not enforced.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';
import { resolveNode, type NodeRuntime } from '../shared/node-runtime.ts';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** Where a log line came from: the platform (START/END/REPORT…), the function's own output, or the emulator. */
export type LogSource = 'platform' | 'function' | 'emulator';
export type LogSink = (line: string, meta: { source: LogSource; environmentId?: string; requestId?: string }) => void;

export interface EmulatorOptions {
  /** Directory or .zip whose root holds the handler module (e.g. index.mjs). Both are copied/extracted to a temp task root. */
  artifact: string;
  /** Lambda handler setting, `<module>.<export>` (default `index.handler`). */
  handler?: string;
  /** Port of the HTTP front (0 = random). The host is always 127.0.0.1. */
  port?: number;
  /** Stage name: `default` (what the Lambda console creates) or `$default` (no stage segment in the path). */
  stage?: string;
  /** Route prefix: `/mlops-service-lambda` gives routes `ANY /mlops-service-lambda` and, with proxyRoute, `ANY /mlops-service-lambda/{proxy+}`; `''` gives the catch-all `$default` route. */
  routePrefix?: string;
  /** Also route sub-paths through `ANY <prefix>/{proxy+}` (default true). An HTTP API route without a greedy variable matches only its exact path. */
  proxyRoute?: boolean;
  functionName?: string;
  /** Memory size in MB (default 512); the environment is killed above it. */
  memoryMb?: number;
  /** Function timeout in seconds (default 30). */
  timeoutSec?: number;
  /** How long an idle environment survives before it is reaped (default 5 minutes). */
  idleReapMs?: number;
  /** Concurrent environments allowed (default 10); beyond it requests are throttled. */
  maxConcurrency?: number;
  /** AWS_REGION / AWS_DEFAULT_REGION (default us-east-1). */
  region?: string;
  /** Function environment variables. Keys Lambda reserves are refused, as Lambda refuses them. */
  environment?: Record<string, string>;
  /** Log sink (default: stderr, prefixed with `[<function> <env id>]`). */
  log?: LogSink;
  /** Init phase limit (Lambda: 10 s); lowering it is only useful in tests. */
  initTimeoutMs?: number;
  /** RSS sampling period while an environment runs (default 20 ms). */
  memorySampleMs?: number;
  /**
   * The Node the environments run on: a major (`22`: installed from the npm registry into
   * .cache/node-22/ on first use), `host` (this process's Node, the default) or a path.
   */
  node?: string;
}

export type InvocationStatus = 'success' | 'error' | 'timeout' | 'crash' | 'out-of-memory' | 'init-error' | 'throttled' | 'rejected';

/** One invocation, as a benchmark wants it. Times are milliseconds. */
export interface InvocationRecord {
  requestId: string;
  source: 'http' | 'invoke';
  environmentId: string | null;
  pid: number | null;
  cold: boolean;
  /** Init phase of a cold start (spawn → runtime's first /next), else null. */
  initDurationMs: number | null;
  durationMs: number;
  /** ceil(Duration + Init Duration on cold starts): init is billed since 1 Aug 2025. */
  billedDurationMs: number;
  memorySizeMb: number;
  maxMemoryUsedMb: number;
  status: InvocationStatus;
  errorType: string | null;
  errorMessage: string | null;
  /** Epoch ms when the invocation was accepted. */
  startedAt: number;
  reportLine: string | null;
}

export interface EnvironmentInfo {
  id: string;
  pid: number | null;
  state: 'initializing' | 'idle' | 'busy' | 'dead';
  frozen: boolean;
  invocations: number;
  createdAt: number;
  lastUsedAt: number;
  initDurationMs: number | null;
  maxMemoryUsedMb: number;
  logStreamName: string;
}

export interface RuntimeStats {
  invocations: number;
  coldStarts: number;
  warmStarts: number;
  errors: number;
  timeouts: number;
  outOfMemory: number;
  throttles: number;
  environmentsStarted: number;
  environmentsReaped: number;
  liveEnvironments: number;
  busyEnvironments: number;
  peakConcurrency: number;
}

/** Result of a direct invocation (the Invoke API's view). */
export interface InvokeResult {
  /** `success`, a function `error` (payload is the error JSON), `throttled` or `rejected` (payload too large). */
  kind: 'success' | 'error' | 'throttled' | 'rejected';
  requestId: string;
  /** Raw payload text: the handler's JSON result, or the error object JSON. */
  payload: string;
  record: InvocationRecord;
}

export interface EmulatorHandle {
  /** http://127.0.0.1:<port> */
  url: string;
  /** What a client uses as its base URL: url + stage segment + route prefix (e.g. …/default/mlops-service-lambda). */
  baseUrl: string;
  port: number;
  /** The extracted/copied task root (LAMBDA_TASK_ROOT). */
  taskRoot: string;
  functionName: string;
  /** The Node the execution environments run on. */
  node: NodeRuntime;
  /** Invoke the function directly with any event (RequestResponse). */
  invoke(event: unknown): Promise<InvokeResult>;
  /**
   * Every finished invocation, oldest first (copies). A record is final when the runtime asks for its
   * next event (where Lambda's Duration ends), which can be just after the client got its answer:
   * await settled() before reading the records of requests that just returned.
   */
  records(): InvocationRecord[];
  /** Resolves once every invocation accepted so far has its final record. */
  settled(): Promise<void>;
  runtimeStats(): RuntimeStats;
  environments(): EnvironmentInfo[];
  /** Kill every idle environment now (what the idle timeout does), including ones that have just answered; resolves with how many were reaped. */
  reapIdle(): Promise<number>;
  /** Stop the front, kill every environment, delete the task root. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Constants (each with its source)
// ---------------------------------------------------------------------------------------------

const BOOTSTRAP = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bootstrap.mjs');
/** Synchronous invocation payload limits: request 6,291,456 B; response 6,291,556 B ("Function.ResponseSizeTooLarge"). */
const MAX_REQUEST_PAYLOAD = 6_291_456;
const MAX_RESPONSE_PAYLOAD = 6_291_556;
/** HTTP API quotas: 10 MB request payload, 30 s maximum integration timeout (docs PR awsdocs/amazon-api-gateway-developer-guide#74). */
const HTTP_API_MAX_BODY = 10 * 1024 * 1024;
const HTTP_API_INTEGRATION_TIMEOUT_MS = 30_000;
const LAMBDA_INIT_TIMEOUT_MS = 10_000;
/**
 * A request that finds every environment busy waits this long for one that has already answered and
 * is only about to ask for its next event, instead of starting a new one. Without it a sequential
 * client would race the runtime's /next call and see cold starts Lambda does not produce.
 */
const FINISHING_GRACE_MS = 100;
const ACCOUNT_ID = '123456789012';
/** Keys Lambda sets itself and refuses in a function's configuration. */
const RESERVED_KEYS = new Set([
  '_HANDLER', '_X_AMZN_TRACE_ID', 'AWS_DEFAULT_REGION', 'AWS_REGION', 'AWS_EXECUTION_ENV', 'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'AWS_LAMBDA_FUNCTION_VERSION', 'AWS_LAMBDA_INITIALIZATION_TYPE', 'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME', 'AWS_LAMBDA_RUNTIME_API', 'LAMBDA_TASK_ROOT', 'LAMBDA_RUNTIME_DIR',
]);
/**
 * Request bodies of these types reach the function as text; everything else (including a missing
 * Content-Type and application/x-www-form-urlencoded) is base64 with isBase64Encoded: true.
 * AWS documents the mechanism but not the list; this split was checked against a real HTTP API in
 * ministackorg/ministack#766. Suffix types (application/*+json) were not checked: treated as binary.
 */
const TEXT_TYPES = new Set(['application/json', 'application/xml', 'application/javascript']);
/** Hop-by-hop headers a proxy does not forward. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/**
 * API Gateway's own answers. HTTP APIs differ from REST APIs here: a REST API answers a function
 * error with 502 {"message": "Internal server error"} (Lambda developer guide, "Handling Lambda
 * errors with an API Gateway API"), while an HTTP API answers 500 {"message":"Internal Server Error"}
 * ("Troubleshooting issues with HTTP API Lambda integrations", API Gateway developer guide; Lambda
 * timeouts also give 500 behind an HTTP API: denoland/deno_registry2#87). The project's issue says 502:
 * that is the REST behaviour, and this emulates an HTTP API.
 */
const GATEWAY = {
  /** Function error, invalid response, function timeout, crash, init failure. */
  functionError: { status: 500, body: '{"message":"Internal Server Error"}' },
  /** Lambda refused the invocation (throttle, payload over 6 MB): "If the Lambda API rejects the invocation request, API Gateway returns a 500" (Lambda developer guide, same page). */
  invokeRejected: { status: 500, body: '{"message":"Internal Server Error"}' },
  /** Integration took longer than 30 s (anomalyco/sst#2232: HTTP API answers 503 "Service Unavailable"). */
  integrationTimeout: { status: 503, body: '{"message":"Service Unavailable"}' },
  /** No stage/route matched ("Routing API requests", HTTP API developer guide). */
  notFound: { status: 404, body: '{"message":"Not Found"}' },
  /** Request body over the 10 MB HTTP API quota. */
  tooLarge: { status: 413, body: '{"message":"Request Entity Too Large"}' },
} as const;

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

type Outcome =
  | { kind: 'success'; payload: string }
  | { kind: 'error'; payload: string; errorType: string; status: InvocationStatus };

interface ActiveInvocation {
  requestId: string;
  source: 'http' | 'invoke';
  eventText: string;
  cold: boolean;
  startedAt: number;
  /** performance.now() when the event was handed to the runtime. */
  t0: number;
  deadlineMs: number;
  timer: NodeJS.Timeout | null;
  outcome: Outcome | null;
  resolveOutcome: (o: Outcome) => void;
  resolveRecord: (r: InvocationRecord) => void;
  finished: boolean;
}

interface Config {
  handler: string;
  stage: string;
  routePrefix: string;
  proxyRoute: boolean;
  functionName: string;
  memoryMb: number;
  timeoutSec: number;
  idleReapMs: number;
  maxConcurrency: number;
  region: string;
  environment: Record<string, string>;
  initTimeoutMs: number;
  memorySampleMs: number;
  node: NodeRuntime;
  taskRoot: string;
  log: LogSink;
}

const hasProc = process.platform === 'linux' && existsSync('/proc/self/status');
/** setpriv --pdeathsig makes the kernel kill a child if the emulator dies, even while it is SIGSTOPped. */
const SETPRIV = process.platform === 'linux' && existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : null;

function readMemoryKb(pid: number): { rss: number; hwm: number } | null {
  if (!hasProc) return null;
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)/.exec(text)?.[1];
    const hwm = /VmHWM:\s+(\d+)/.exec(text)?.[1];
    return rss === undefined ? null : { rss: Number(rss), hwm: Number(hwm ?? rss) };
  } catch {
    return null;
  }
}

function exitReason(code: number | null, signal: NodeJS.Signals | null): string {
  // Lambda reports exits the way Go's os/exec prints them.
  const names: Partial<Record<NodeJS.Signals, string>> = { SIGKILL: 'killed', SIGABRT: 'aborted', SIGSEGV: 'segmentation fault', SIGTERM: 'terminated', SIGINT: 'interrupt', SIGBUS: 'bus error' };
  if (signal) return `Runtime exited with error: signal: ${names[signal] ?? signal.toLowerCase()}`;
  if (code === 0) return 'Runtime exited without providing a reason';
  return `Runtime exited with error: exit status ${code}`;
}

function fmt2(ms: number): string {
  return ms.toFixed(2);
}

function clfTime(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function errorPayload(errorType: string, errorMessage: string): string {
  return JSON.stringify({ errorType, errorMessage });
}

function readBody(req: IncomingMessage, limit: number): Promise<{ body: Buffer; tooLarge: boolean; size: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => resolve({ body: Buffer.concat(chunks), tooLarge: size > limit, size }));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string | string[]> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body);
}

// ---------------------------------------------------------------------------------------------
// Execution environment: one child process + its own Runtime API server
// ---------------------------------------------------------------------------------------------

class ExecutionEnvironment {
  readonly id: string;
  readonly logStreamName: string;
  readonly createdAt = Date.now();
  lastUsedAt = Date.now();
  state: EnvironmentInfo['state'] = 'initializing';
  frozen = false;
  invocations = 0;
  initDurationMs: number | null = null;
  peakKb = 0;
  child: ChildProcess | null = null;
  /** Resolves once the runtime asks for its first event; rejects with the init failure. */
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;

  private server: http.Server | null = null;
  /** True once the runtime has asked for its first event (end of the init phase). */
  private initialized = false;
  private pendingNext: ServerResponse | null = null;
  private active: ActiveInvocation | null = null;
  private spawnT0 = 0;
  private initError: { errorType: string; payload: string } | null = null;
  private initTimer: NodeJS.Timeout | null = null;
  private sampler: NodeJS.Timeout | null = null;
  private reapTimer: NodeJS.Timeout | null = null;
  private exitHandled = false;
  private idleWaiters: Array<() => void> = [];
  private killReason: 'timeout' | 'out-of-memory' | 'reaped' | 'stopped' | 'init-timeout' | null = null;
  private resolveReady!: () => void;
  private rejectReady!: (e: { errorType: string; payload: string }) => void;
  private resolveExited!: () => void;

  constructor(
    private readonly cfg: Config,
    index: number,
    private readonly hooks: { onDead: (env: ExecutionEnvironment) => void; onReport: (r: InvocationRecord) => void },
  ) {
    this.id = `env-${index}`;
    const d = new Date();
    const day = `${d.getUTCFullYear()}/${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}`;
    this.logStreamName = `${day}/[$LATEST]${randomBytes(16).toString('hex')}`;
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined); // observed by invoke(); never an unhandled rejection
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  private log(line: string, source: LogSource, requestId?: string): void {
    this.cfg.log(line, { source, environmentId: this.id, ...(requestId ? { requestId } : {}) });
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => this.onRuntimeApi(req, res));
    this.server.requestTimeout = 0; // /next is a long poll held for as long as the environment idles
    this.server.keepAliveTimeout = 0;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    if (this.state === 'dead') {
      this.server.close(); // stopped while the Runtime API server was starting
      return;
    }
    const apiPort = (this.server.address() as AddressInfo).port;

    const cfg = this.cfg;
    const runtimeDir = path.dirname(BOOTSTRAP);
    const env: Record<string, string> = {
      // Lambda's environment (names and values from a real nodejs function's `env`); nothing of the emulator's own env leaks except PATH.
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      NODE_PATH: [`/opt/nodejs/node22/node_modules`, '/opt/nodejs/node_modules', path.join(runtimeDir, 'node_modules'), runtimeDir, cfg.taskRoot].join(':'),
      AWS_LAMBDA_FUNCTION_NAME: cfg.functionName,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(cfg.memoryMb),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${cfg.functionName}`,
      AWS_LAMBDA_LOG_STREAM_NAME: this.logStreamName,
      AWS_REGION: cfg.region,
      AWS_DEFAULT_REGION: cfg.region,
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${apiPort}`,
      LAMBDA_TASK_ROOT: cfg.taskRoot,
      LAMBDA_RUNTIME_DIR: runtimeDir,
      _HANDLER: cfg.handler,
      // Node 20+ managed runtimes no longer set NODE_EXTRA_CA_CERTS (nodejs18.x's bootstrap exported
      // /var/runtime/ca-cert.pem; see the AWS Compute Blog post on Node.js 20 and classmethod's
      // measurement of its cold-start cost), and it nearly doubles Node's start-up: the host's value
      // is never passed on. A function that needs one sets it in its configuration (--env).
      ...cfg.environment,
    };
    // Same V8 flags as the managed runtime's bootstrap script (memory split: new space = 10 %).
    const newSpace = Math.floor(cfg.memoryMb / 10);
    const nodeArgs = ['--expose-gc', '--max-http-header-size=81920', `--max-semi-space-size=${Math.floor(newSpace / 2)}`, `--max-old-space-size=${cfg.memoryMb - newSpace}`, BOOTSTRAP];
    const node = cfg.node.path;
    const [cmd, args] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', node, ...nodeArgs]] : [node, nodeArgs];

    this.spawnT0 = performance.now();
    // Own process group: a terminal's Ctrl-C reaches the emulator, which then stops them in order.
    const child = spawn(cmd, args, { cwd: cfg.taskRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    this.log(`INIT_START Runtime Version: nodejs:${cfg.node.major}.local (Node ${cfg.node.version}, emulated)\tRuntime Version ARN: local`, 'platform');
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          // The runtime turns newlines inside one log call into \r (one CloudWatch event); show them as lines.
          this.log(buffered.slice(0, nl).replace(/\r/g, '\n'), 'function', this.active?.requestId);
          buffered = buffered.slice(nl + 1);
        }
      });
      stream?.on('end', () => {
        if (buffered) this.log(buffered.replace(/\r/g, '\n'), 'function', this.active?.requestId);
      });
    }
    child.on('error', (err) => this.log(`failed to start the execution environment: ${err.message}`, 'emulator'));
    child.on('exit', (code, signal) => this.onExit(code, signal));

    this.initTimer = setTimeout(() => {
      this.log(`INIT_REPORT Init Duration: ${fmt2(cfg.initTimeoutMs)} ms\tPhase: init\tStatus: timeout`, 'platform');
      this.killReason = 'init-timeout';
      // Simplified: Lambda would retry init once inside the invoke phase (under the function timeout);
      // here the invocation fails at once with Lambda's timeout error type.
      this.initError = { errorType: 'Sandbox.Timedout', payload: errorPayload('Sandbox.Timedout', `Init phase timed out after ${fmt2(cfg.initTimeoutMs / 1000)} seconds`) };
      this.kill();
    }, cfg.initTimeoutMs);
    this.startSampling();
  }

  // --- Runtime API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html)
  private onRuntimeApi(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    if (req.method === 'GET' && url === '/2018-06-01/runtime/invocation/next') {
      this.onNext(res);
      return;
    }
    const m = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
    if (req.method === 'POST' && m) {
      const requestId = decodeURIComponent(m[1] ?? '');
      const kind = m[2];
      void readBody(req, MAX_RESPONSE_PAYLOAD).then(({ body, tooLarge, size }) => {
        const active = this.active;
        if (!active || active.requestId !== requestId || active.outcome) {
          send(res, 400, errorPayload('InvalidRequestID', `Invalid request ID: ${requestId}`));
          return;
        }
        if (kind === 'response' && tooLarge) {
          const message = `Response payload size (${size} bytes) exceeded maximum allowed payload size (${MAX_RESPONSE_PAYLOAD} bytes).`;
          send(res, 413, JSON.stringify({ errorMessage: `Exceeded maximum allowed payload size (${MAX_RESPONSE_PAYLOAD} bytes).`, errorType: 'RequestEntityTooLarge' }));
          this.settle({ kind: 'error', payload: errorPayload('Function.ResponseSizeTooLarge', message), errorType: 'Function.ResponseSizeTooLarge', status: 'error' });
          return;
        }
        send(res, 202, '{"status":"OK"}');
        if (kind === 'response') {
          this.settle({ kind: 'success', payload: body.toString('utf8') });
        } else {
          const header = req.headers['lambda-runtime-function-error-type'];
          let errorType = typeof header === 'string' ? header : 'Unknown';
          try {
            const parsed = JSON.parse(body.toString('utf8')) as { errorType?: unknown };
            if (typeof parsed.errorType === 'string') errorType = parsed.errorType;
          } catch { /* keep the header's type */ }
          this.settle({ kind: 'error', payload: body.toString('utf8'), errorType, status: 'error' });
        }
      });
      return;
    }
    if (req.method === 'POST' && url === '/2018-06-01/runtime/init/error') {
      void readBody(req, MAX_RESPONSE_PAYLOAD).then(({ body }) => {
        send(res, 202, '{"status":"OK"}');
        let errorType = String(req.headers['lambda-runtime-function-error-type'] ?? 'Runtime.Unknown');
        try {
          const parsed = JSON.parse(body.toString('utf8')) as { errorType?: unknown };
          if (typeof parsed.errorType === 'string') errorType = parsed.errorType;
        } catch { /* keep the header's type */ }
        this.initError = { errorType, payload: body.toString('utf8') };
      });
      return;
    }
    send(res, 404, errorPayload('NotFound', `${req.method} ${url}`));
  }

  private onNext(res: ServerResponse): void {
    this.pendingNext = res;
    if (!this.initialized) {
      this.initialized = true;
      this.initDurationMs = performance.now() - this.spawnT0;
      if (this.initTimer) clearTimeout(this.initTimer);
      this.initTimer = null;
      this.resolveReady();
      return; // the invocation that started this environment is delivered by invoke()
    }
    const active = this.active;
    if (active && !active.finished) {
      // The runtime is done: Duration ends here, as on Lambda (the response may have been returned earlier).
      if (!active.outcome) this.settle({ kind: 'success', payload: 'null' });
      this.finish(active, active.outcome?.kind === 'error' ? active.outcome.status : 'success');
    }
    this.becomeIdle();
  }

  private becomeIdle(): void {
    if (this.state === 'dead') return;
    this.state = 'idle';
    this.lastUsedAt = Date.now();
    this.stopSampling();
    // Freeze between invocations, as Lambda does; timers inside the function do not run while idle.
    if (this.child?.pid && !this.frozen) {
      try {
        process.kill(this.child.pid, 'SIGSTOP');
        this.frozen = true;
      } catch { /* already gone */ }
    }
    if (this.reapTimer) clearTimeout(this.reapTimer);
    this.reapTimer = setTimeout(() => {
      if (this.state === 'idle') this.reap();
    }, this.cfg.idleReapMs);
    this.reapTimer.unref();
    this.flushIdleWaiters();
  }

  private flushIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Answered already, only waiting for the runtime's next /next call. */
  get finishing(): boolean {
    return this.state === 'busy' && this.active !== null && this.active.outcome !== null && !this.active.finished;
  }

  whenIdleOrDead(): Promise<void> {
    if (this.state === 'idle' || this.state === 'dead') return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private thaw(): void {
    if (this.reapTimer) clearTimeout(this.reapTimer);
    this.reapTimer = null;
    if (this.frozen && this.child?.pid) {
      try {
        process.kill(this.child.pid, 'SIGCONT');
      } catch { /* gone */ }
    }
    this.frozen = false;
  }

  /** Reserve this environment for one invocation (called synchronously by the pool). */
  reserve(): void {
    if (this.state === 'idle') this.state = 'busy';
    if (this.reapTimer) clearTimeout(this.reapTimer);
    this.reapTimer = null;
  }

  /** Run one invocation; resolves with the outcome (as soon as the runtime answers) and the record (when the runtime asks for more work). */
  invoke(requestId: string, eventText: string, source: 'http' | 'invoke', cold: boolean): { outcome: Promise<Outcome>; record: Promise<InvocationRecord> } {
    let resolveOutcome!: (o: Outcome) => void;
    let resolveRecord!: (r: InvocationRecord) => void;
    const outcome = new Promise<Outcome>((r) => (resolveOutcome = r));
    const record = new Promise<InvocationRecord>((r) => (resolveRecord = r));
    const active: ActiveInvocation = {
      requestId, source, eventText, cold, startedAt: Date.now(), t0: 0, deadlineMs: 0, timer: null,
      outcome: null, resolveOutcome, resolveRecord, finished: false,
    };
    this.active = active;

    void this.ready.then(
      () => this.deliver(active),
      (initError: { errorType: string; payload: string }) => {
        // Init failed: the invocation fails with the init error, as Lambda reports it to the caller.
        active.t0 = performance.now();
        this.log(`START RequestId: ${requestId} Version: $LATEST`, 'platform', requestId);
        this.settle({ kind: 'error', payload: initError.payload, errorType: initError.errorType, status: 'init-error' });
        this.finish(active, 'init-error');
      },
    );
    return { outcome, record };
  }

  private deliver(active: ActiveInvocation): void {
    const res = this.pendingNext;
    if (!res || this.state === 'dead') {
      this.settle({ kind: 'error', payload: errorPayload('Runtime.ExitError', `RequestId: ${active.requestId} Error: Runtime exited without providing a reason`), errorType: 'Runtime.ExitError', status: 'crash' });
      this.finish(active, 'crash');
      return;
    }
    this.pendingNext = null;
    this.state = 'busy';
    this.thaw();
    this.invocations += 1;
    this.startSampling();
    const timeoutMs = this.cfg.timeoutSec * 1000;
    active.t0 = performance.now();
    active.deadlineMs = Date.now() + timeoutMs;
    this.log(`START RequestId: ${active.requestId} Version: $LATEST`, 'platform', active.requestId);
    const hex = randomBytes(12).toString('hex');
    res.writeHead(200, {
      'content-type': 'application/json',
      'lambda-runtime-aws-request-id': active.requestId,
      'lambda-runtime-deadline-ms': String(active.deadlineMs),
      'lambda-runtime-invoked-function-arn': `arn:aws:lambda:${this.cfg.region}:${ACCOUNT_ID}:function:${this.cfg.functionName}`,
      'lambda-runtime-trace-id': `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${hex};Parent=${randomBytes(8).toString('hex')};Sampled=0;Lineage=1:0`,
    });
    res.end(active.eventText);
    active.timer = setTimeout(() => {
      if (active.finished) return;
      // Lambda's own log line for a timeout, then the environment is torn down.
      this.log(`${new Date().toISOString()} ${active.requestId} Task timed out after ${fmt2(this.cfg.timeoutSec)} seconds`, 'platform', active.requestId);
      this.killReason = 'timeout';
      this.settle({ kind: 'error', payload: errorPayload('Sandbox.Timedout', `RequestId: ${active.requestId} Error: Task timed out after ${fmt2(this.cfg.timeoutSec)} seconds`), errorType: 'Sandbox.Timedout', status: 'timeout' });
      this.kill();
    }, timeoutMs);
  }

  private settle(outcome: Outcome): void {
    const active = this.active;
    if (!active || active.outcome) return;
    active.outcome = outcome;
    active.resolveOutcome(outcome);
  }

  private finish(active: ActiveInvocation, status: InvocationStatus): void {
    if (active.finished) return;
    active.finished = true;
    if (active.timer) clearTimeout(active.timer);
    const cfg = this.cfg;
    let durationMs = performance.now() - active.t0;
    if (status === 'timeout') durationMs = cfg.timeoutSec * 1000;
    const initMs = active.cold ? this.initDurationMs ?? (status === 'init-error' ? performance.now() - this.spawnT0 : null) : null;
    // Since 1 Aug 2025 the INIT phase of on-demand zip functions is billed too (AWS Compute Blog,
    // "AWS Lambda standardizes billing for INIT Phase"), so Billed Duration covers Init + Duration,
    // as it always did for container images (bitesizedserverless.com measurements).
    const billedDurationMs = Math.max(1, Math.ceil(durationMs + (initMs ?? 0)));
    const mem = this.pid ? readMemoryKb(this.pid) : null;
    if (mem) this.peakKb = Math.max(this.peakKb, mem.hwm);
    const maxMemoryUsedMb = status === 'out-of-memory' ? cfg.memoryMb : Math.min(cfg.memoryMb, Math.ceil(this.peakKb / 1024));
    const errorType = active.outcome?.kind === 'error' ? active.outcome.errorType : null;
    let errorMessage: string | null = null;
    if (active.outcome?.kind === 'error') {
      try {
        const parsed = JSON.parse(active.outcome.payload) as { errorMessage?: unknown };
        errorMessage = typeof parsed.errorMessage === 'string' ? parsed.errorMessage : null;
      } catch { /* not JSON */ }
    }
    let report = `REPORT RequestId: ${active.requestId}\tDuration: ${fmt2(durationMs)} ms\tBilled Duration: ${billedDurationMs} ms\tMemory Size: ${cfg.memoryMb} MB\tMax Memory Used: ${maxMemoryUsedMb} MB`;
    if (initMs !== null) report += `\tInit Duration: ${fmt2(initMs)} ms`;
    // Platform-level failures carry a status in the REPORT line; a handled function error does not.
    if (status === 'timeout') report += '\tStatus: timeout';
    else if (status === 'out-of-memory') report += '\tStatus: error\tError Type: Runtime.OutOfMemory';
    else if (status === 'crash' || status === 'init-error') report += `\tStatus: error\tError Type: ${errorType ?? 'Runtime.ExitError'}`;
    this.log(`END RequestId: ${active.requestId}`, 'platform', active.requestId);
    this.log(report, 'platform', active.requestId);
    const record: InvocationRecord = {
      requestId: active.requestId,
      source: active.source,
      environmentId: this.id,
      pid: this.pid,
      cold: active.cold,
      initDurationMs: initMs,
      durationMs,
      billedDurationMs,
      memorySizeMb: cfg.memoryMb,
      maxMemoryUsedMb,
      status,
      errorType,
      errorMessage,
      startedAt: active.startedAt,
      reportLine: report,
    };
    this.hooks.onReport(record);
    active.resolveRecord(record);
    this.active = null;
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exitHandled) return;
    this.exitHandled = true;
    const wasInitializing = !this.initialized;
    this.state = 'dead';
    this.frozen = false;
    this.stopSampling();
    if (this.initTimer) clearTimeout(this.initTimer);
    if (this.reapTimer) clearTimeout(this.reapTimer);
    this.pendingNext = null;
    const reason = exitReason(code, signal);
    if (wasInitializing) {
      const initMs = performance.now() - this.spawnT0;
      const failure = this.initError ?? { errorType: 'Runtime.ExitError', payload: errorPayload('Runtime.ExitError', reason) };
      if (this.killReason !== 'init-timeout') {
        this.log(`INIT_REPORT Init Duration: ${fmt2(initMs)} ms\tPhase: init\tStatus: error\tError Type: ${failure.errorType}`, 'platform');
      }
      this.rejectReady(failure);
    }
    const active = this.active;
    if (active && !wasInitializing) {
      if (this.killReason === 'out-of-memory') {
        this.log(`RequestId: ${active.requestId} Error: Runtime exited with error: signal: killed\nRuntime.OutOfMemory`, 'platform', active.requestId);
        this.settle({ kind: 'error', payload: errorPayload('Runtime.ExitError', `RequestId: ${active.requestId} Error: Runtime exited with error: signal: killed`), errorType: 'Runtime.OutOfMemory', status: 'out-of-memory' });
        this.finish(active, 'out-of-memory');
      } else if (this.killReason === 'timeout') {
        this.finish(active, 'timeout');
      } else if (active.outcome?.kind === 'success') {
        this.finish(active, 'success'); // answered, then died before asking for more work
      } else if (active.outcome) {
        this.finish(active, active.outcome.status === 'error' ? 'crash' : active.outcome.status);
      } else {
        this.log(`RequestId: ${active.requestId} Error: ${reason}\nRuntime.ExitError`, 'platform', active.requestId);
        this.settle({ kind: 'error', payload: errorPayload('Runtime.ExitError', `RequestId: ${active.requestId} Error: ${reason}`), errorType: 'Runtime.ExitError', status: 'crash' });
        this.finish(active, 'crash');
      }
    } else if (!wasInitializing && this.killReason === null) {
      this.log(`execution environment ${this.id} (pid ${this.pid}) exited while idle: ${reason}`, 'emulator');
    }
    this.server?.closeAllConnections();
    this.server?.close();
    this.flushIdleWaiters();
    this.hooks.onDead(this);
    this.resolveExited();
  }

  private startSampling(): void {
    if (!hasProc || this.sampler || !this.child?.pid) return;
    const pid = this.child.pid;
    const limitKb = this.cfg.memoryMb * 1024;
    this.sampler = setInterval(() => {
      const mem = readMemoryKb(pid);
      if (!mem) return;
      this.peakKb = Math.max(this.peakKb, mem.hwm);
      if (mem.rss > limitKb && this.killReason === null) {
        this.killReason = 'out-of-memory';
        this.kill();
      }
    }, this.cfg.memorySampleMs);
  }

  private stopSampling(): void {
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = null;
  }

  /** SIGKILL works on a stopped process too, so no thaw is needed first. */
  kill(): void {
    const pid = this.child?.pid;
    if (pid && this.state !== 'dead') {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* already gone */ }
    }
  }

  reap(): void {
    if (this.state === 'dead') return;
    this.killReason ??= 'reaped';
    this.log(`reaping idle execution environment ${this.id} (pid ${this.pid})`, 'emulator');
    this.kill();
    this.state = 'dead'; // never hand it another invocation while the kill lands
  }

  stopNow(): void {
    this.killReason ??= 'stopped';
    this.kill();
    if (!this.child?.pid) {
      this.state = 'dead';
      this.onExit(null, 'SIGKILL');
    }
  }

  info(): EnvironmentInfo {
    return {
      id: this.id, pid: this.pid, state: this.state, frozen: this.frozen, invocations: this.invocations,
      createdAt: this.createdAt, lastUsedAt: this.lastUsedAt, initDurationMs: this.initDurationMs,
      maxMemoryUsedMb: Math.ceil(this.peakKb / 1024), logStreamName: this.logStreamName,
    };
  }

  get wasReaped(): boolean {
    return this.killReason === 'reaped';
  }
}

// ---------------------------------------------------------------------------------------------
// Artifact → task root
// ---------------------------------------------------------------------------------------------

function prepareTaskRoot(artifact: string): string {
  if (!existsSync(artifact)) throw new Error(`Lambda artifact not found: ${artifact}`);
  const root = mkdtempSync(path.join(tmpdir(), 'lambda-emulator-task-'));
  // Always a private copy: like /var/task, the function sees only what was packaged (no parent node_modules).
  if (statSync(artifact).isDirectory()) {
    cpSync(artifact, root, { recursive: true });
    return root;
  }
  const entries = unzipSync(new Uint8Array(readFileSync(artifact)));
  for (const [name, data] of Object.entries(entries)) {
    const target = path.resolve(root, name);
    if (target !== root && !target.startsWith(root + path.sep)) throw new Error(`Refusing zip entry outside the task root: ${name}`);
    if (name.endsWith('/')) mkdirSync(target, { recursive: true });
    else {
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, data);
    }
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// HTTP API front: request → payload 2.0 event, result → response
// ---------------------------------------------------------------------------------------------

type RouteMatch = { routeKey: string; pathParameters?: Record<string, string> };

function matchRoute(cfg: Config, pathname: string): RouteMatch | null {
  let resourcePath = pathname;
  if (cfg.stage !== '$default') {
    const stagePrefix = `/${cfg.stage}`;
    if (pathname === stagePrefix) resourcePath = '/';
    else if (pathname.startsWith(`${stagePrefix}/`)) resourcePath = pathname.slice(stagePrefix.length);
    else return null; // no matching stage and no $default stage: {"message":"Not Found"}
  }
  if (cfg.routePrefix === '') return { routeKey: '$default' };
  const prefix = cfg.routePrefix;
  // A trailing slash on the exact route is accepted (not checked against AWS).
  if (resourcePath === prefix || resourcePath === `${prefix}/`) return { routeKey: `ANY ${prefix}` };
  if (cfg.proxyRoute && resourcePath.startsWith(`${prefix}/`)) {
    const rest = resourcePath.slice(prefix.length + 1);
    let proxy = rest;
    try {
      proxy = decodeURIComponent(rest); // API Gateway decodes request parameters
    } catch { /* keep raw */ }
    return { routeKey: `ANY ${prefix}/{proxy+}`, pathParameters: { proxy } };
  }
  return null;
}

function isTextContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const base = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return base.startsWith('text/') || TEXT_TYPES.has(base);
}

function buildEvent(cfg: Config, apiId: string, req: IncomingMessage, body: Buffer, route: RouteMatch, requestId: string, port: number): Record<string, unknown> {
  const rawUrl = req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  const rawQueryString = q >= 0 ? rawUrl.slice(q + 1) : '';

  // Headers: lower-cased, repeated ones comma-joined; Cookie headers move to `cookies`.
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const value = raw[i + 1] ?? '';
    if (HOP_BY_HOP.has(name)) continue;
    if (name === 'cookie') {
      for (const c of value.split(';')) if (c.trim()) cookies.push(c.trim());
      continue;
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  const sourceIp = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${sourceIp}` : sourceIp;
  // The client-facing protocol/port: plain http on this machine (API Gateway says https/443 on AWS).
  headers['x-forwarded-port'] = String(port);
  headers['x-forwarded-proto'] = 'http';
  headers['x-amzn-trace-id'] ??= `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;

  let queryStringParameters: Record<string, string> | undefined;
  if (rawQueryString) {
    queryStringParameters = {};
    for (const [k, v] of new URLSearchParams(rawQueryString)) {
      queryStringParameters[k] = k in queryStringParameters ? `${queryStringParameters[k]},${v}` : v;
    }
  }

  const hostHeader = headers.host ?? `${apiId}.execute-api.${cfg.region}.amazonaws.com`;
  const domainName = hostHeader.replace(/:\d+$/, '');
  const now = new Date();
  const event: Record<string, unknown> = {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath,
    rawQueryString,
    ...(cookies.length ? { cookies } : {}),
    headers,
    ...(queryStringParameters ? { queryStringParameters } : {}),
    requestContext: {
      accountId: ACCOUNT_ID,
      apiId,
      domainName,
      domainPrefix: domainName.split('.')[0] ?? domainName,
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: route.routeKey,
      stage: cfg.stage,
      time: clfTime(now),
      timeEpoch: now.getTime(),
    },
  };
  if (body.length > 0) {
    const text = isTextContentType(headers['content-type']);
    event.body = text ? body.toString('utf8') : body.toString('base64');
    event.isBase64Encoded = !text;
  } else {
    event.isBase64Encoded = false;
  }
  if (route.pathParameters) event.pathParameters = route.pathParameters;
  return event;
}

interface MappedResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/** Payload 2.0 response mapping; returns null for a response API Gateway cannot use (→ 500). */
function mapResult(payload: string, warn: (msg: string) => void): MappedResponse | null {
  let result: unknown;
  try {
    result = JSON.parse(payload);
  } catch {
    return null;
  }
  // The 2.0 inference rule: valid JSON without a statusCode → 200, application/json, body = the result
  // (a JSON string result is used as the body text itself, per the docs' "Hello from Lambda!" example).
  if (typeof result !== 'object' || result === null || Array.isArray(result) || !('statusCode' in result)) {
    return { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(typeof result === 'string' ? result : payload, 'utf8') };
  }
  const r = result as Record<string, unknown>;
  const status = typeof r.statusCode === 'number' ? r.statusCode : typeof r.statusCode === 'string' && /^\d+$/.test(r.statusCode) ? Number(r.statusCode) : NaN;
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    warn(`invalid statusCode ${JSON.stringify(r.statusCode)} in the function's response`);
    return null;
  }
  const headers: Record<string, string | string[]> = {};
  const add = (name: string, value: unknown) => {
    if (value === null || value === undefined || typeof value === 'object') return;
    const key = name.toLowerCase();
    const existing = headers[key];
    if (existing === undefined) headers[key] = String(value);
    else headers[key] = ([] as string[]).concat(existing, String(value));
  };
  if (r.headers !== undefined && r.headers !== null) {
    if (typeof r.headers !== 'object') return null;
    for (const [k, v] of Object.entries(r.headers as Record<string, unknown>)) add(k, v);
  }
  if (r.multiValueHeaders !== undefined && r.multiValueHeaders !== null && typeof r.multiValueHeaders === 'object') {
    // Not part of the documented 2.0 response format; honoured here, but a real HTTP API may ignore it.
    warn('multiValueHeaders is not part of the payload 2.0 response format; a real HTTP API may ignore it');
    for (const [k, values] of Object.entries(r.multiValueHeaders as Record<string, unknown>)) {
      if (Array.isArray(values)) for (const v of values) add(k, v);
    }
  }
  if (r.cookies !== undefined && r.cookies !== null) {
    if (!Array.isArray(r.cookies)) return null;
    const setCookies = ([] as string[]).concat(headers['set-cookie'] ?? [], r.cookies.map(String));
    if (setCookies.length) headers['set-cookie'] = setCookies;
  }
  let body = Buffer.alloc(0);
  if (r.body !== undefined && r.body !== null) {
    if (typeof r.body !== 'string') {
      warn('the response body must be a string');
      return null;
    }
    body = r.isBase64Encoded === true ? Buffer.from(r.body, 'base64') : Buffer.from(r.body, 'utf8');
  }
  // Not verified for HTTP APIs: REST proxy integrations default to application/json, so do we.
  headers['content-type'] ??= 'application/json';
  return { status, headers, body };
}

// ---------------------------------------------------------------------------------------------
// The emulator
// ---------------------------------------------------------------------------------------------

function defaultLog(functionName: string): LogSink {
  return (line, meta) => {
    const tag = meta.source === 'emulator' ? 'emulator' : `${functionName}${meta.environmentId ? ` ${meta.environmentId}` : ''}`;
    for (const l of line.split('\n')) process.stderr.write(`[${tag}] ${l}\n`);
  };
}

function normalisePrefix(prefix: string): string {
  if (prefix === '' || prefix === '/') return '';
  return `/${prefix.replace(/^\/+|\/+$/g, '')}`;
}

/** Start the emulator; see EmulatorOptions for defaults. */
export async function startEmulator(options: EmulatorOptions): Promise<EmulatorHandle> {
  const functionName = options.functionName ?? 'mlops-service-lambda';
  const environment = options.environment ?? {};
  const reserved = Object.keys(environment).filter((k) => RESERVED_KEYS.has(k));
  if (reserved.length) {
    throw new Error(`Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: ${reserved.join(', ')}`);
  }
  const stage = options.stage ?? 'default';
  if (stage !== '$default' && !/^[A-Za-z0-9_-]+$/.test(stage)) throw new Error(`Invalid stage name: ${stage}`);
  const memoryMb = options.memoryMb ?? 512;
  const timeoutSec = options.timeoutSec ?? 30;
  const maxConcurrency = options.maxConcurrency ?? 10;
  if (!Number.isInteger(memoryMb) || memoryMb < 128 || memoryMb > 10_240) throw new Error('memoryMb must be a whole number between 128 and 10240 (Lambda limits)');
  if (!(timeoutSec > 0 && timeoutSec <= 900)) throw new Error('timeoutSec must be between 1 and 900 (Lambda limits)');
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) throw new Error('maxConcurrency must be at least 1');
  const cfg: Config = {
    handler: options.handler ?? 'index.handler',
    stage,
    routePrefix: normalisePrefix(options.routePrefix ?? '/mlops-service-lambda'),
    proxyRoute: options.proxyRoute ?? true,
    functionName,
    memoryMb,
    timeoutSec,
    idleReapMs: options.idleReapMs ?? 5 * 60_000,
    maxConcurrency,
    region: options.region ?? 'us-east-1',
    environment,
    initTimeoutMs: options.initTimeoutMs ?? LAMBDA_INIT_TIMEOUT_MS,
    memorySampleMs: options.memorySampleMs ?? 20,
    node: resolveNode(options.node ?? 'host'),
    taskRoot: prepareTaskRoot(path.resolve(options.artifact)),
    log: options.log ?? defaultLog(functionName),
  };

  const apiId = Array.from(randomBytes(10), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');
  const envs = new Set<ExecutionEnvironment>();
  const records: InvocationRecord[] = [];
  const inFlight = new Set<Promise<InvocationRecord>>();
  let envCounter = 0;
  let stopped = false;
  const stats = { environmentsStarted: 0, environmentsReaped: 0, throttles: 0, peakConcurrency: 0 };
  const emulatorLog = (line: string) => cfg.log(line, { source: 'emulator' });
  const warnedOnce = new Set<string>();
  const warnOnce = (msg: string) => {
    if (!warnedOnce.has(msg)) {
      warnedOnce.add(msg);
      emulatorLog(`warning: ${msg}`);
    }
  };

  // Children must not outlive the emulator: a synchronous kill on exit (setpriv covers crashes).
  const killAll = () => {
    for (const env of envs) env.kill();
  };
  process.on('exit', killAll);

  function pickIdle(): { env: ExecutionEnvironment; cold: boolean } | null {
    // Most recently used idle environment first, so the others age out and get reaped.
    let best: ExecutionEnvironment | null = null;
    for (const env of envs) if (env.state === 'idle' && (!best || env.lastUsedAt > best.lastUsedAt)) best = env;
    if (!best) return null;
    best.reserve();
    return { env: best, cold: false };
  }

  async function acquire(): Promise<{ env: ExecutionEnvironment; cold: boolean } | null> {
    const idle = pickIdle();
    if (idle) return idle;
    const finishing = [...envs].filter((e) => e.finishing);
    if (finishing.length) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.race(finishing.map((e) => e.whenIdleOrDead())),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, FINISHING_GRACE_MS))),
      ]);
      clearTimeout(timer);
      const again = pickIdle();
      if (again) return again;
    }
    if (stopped || envs.size >= cfg.maxConcurrency) return null;
    const env = new ExecutionEnvironment(cfg, ++envCounter, {
      onDead: (e) => {
        envs.delete(e);
        if (e.wasReaped) stats.environmentsReaped += 1;
      },
      onReport: (r) => records.push(r),
    });
    envs.add(env);
    stats.environmentsStarted += 1;
    void env.start().catch((err: Error) => {
      emulatorLog(`could not start an execution environment: ${err.message}`);
      env.stopNow();
    });
    return { env, cold: true };
  }

  /** Lambda's synchronous Invoke, shared by the HTTP front and the Invoke API. */
  function invokeRaw(eventText: string, source: 'http' | 'invoke'): { requestId: string; outcome: Promise<Outcome | 'throttled' | 'rejected'>; record: Promise<InvocationRecord> } {
    if (stopped) throw new Error('The emulator is stopped');
    const requestId = randomUUID();
    const base = {
      requestId, source, environmentId: null, pid: null, cold: false, initDurationMs: null, durationMs: 0, billedDurationMs: 0,
      memorySizeMb: cfg.memoryMb, maxMemoryUsedMb: 0, errorType: null, errorMessage: null, startedAt: Date.now(), reportLine: null,
    } satisfies Omit<InvocationRecord, 'status'>;
    if (Buffer.byteLength(eventText) > MAX_REQUEST_PAYLOAD) {
      const record: InvocationRecord = { ...base, status: 'rejected', errorType: 'RequestTooLargeException' };
      records.push(record);
      return { requestId, outcome: Promise.resolve('rejected'), record: Promise.resolve(record) };
    }
    let resolveOutcome!: (o: Outcome | 'throttled' | 'rejected') => void;
    let resolveRecord!: (r: InvocationRecord) => void;
    const outcome = new Promise<Outcome | 'throttled' | 'rejected'>((r) => (resolveOutcome = r));
    const record = new Promise<InvocationRecord>((r) => (resolveRecord = r));
    inFlight.add(record);
    void record.then(() => inFlight.delete(record));
    void acquire().then((picked) => {
      if (!picked) {
        stats.throttles += 1;
        emulatorLog(`throttled: all ${cfg.maxConcurrency} execution environments are busy (Rate Exceeded.)`);
        const throttled: InvocationRecord = { ...base, status: 'throttled', errorType: 'TooManyRequestsException' };
        records.push(throttled);
        resolveOutcome('throttled');
        resolveRecord(throttled);
        return;
      }
      const run = picked.env.invoke(requestId, eventText, source, picked.cold);
      let busy = 0;
      for (const env of envs) if (env.state === 'busy' || env.state === 'initializing') busy += 1;
      stats.peakConcurrency = Math.max(stats.peakConcurrency, busy);
      void run.outcome.then(resolveOutcome);
      void run.record.then(resolveRecord);
    });
    return { requestId, outcome, record };
  }

  // --- HTTP front (API Gateway HTTP API + Lambda Invoke API on one port)
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((err: Error) => {
      emulatorLog(`internal emulator error: ${err.stack ?? err.message}`);
      send(res, 500, GATEWAY.functionError.body);
    });
  });

  async function handleInvokeApi(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const decoded = decodeURIComponent(name);
    const bareName = decoded.replace(/^arn:aws:lambda:[^:]+:\d+:function:/, '').replace(/:(\$LATEST)$/, '');
    const amzHeaders = { 'x-amzn-requestid': randomUUID() };
    if (bareName !== cfg.functionName) {
      send(res, 404, JSON.stringify({ Type: 'User', Message: `Function not found: arn:aws:lambda:${cfg.region}:${ACCOUNT_ID}:function:${decoded}` }), { ...amzHeaders, 'x-amzn-errortype': 'ResourceNotFoundException' });
      return;
    }
    const { body, tooLarge, size } = await readBody(req, MAX_REQUEST_PAYLOAD);
    if (tooLarge) {
      send(res, 413, JSON.stringify({ Type: 'User', message: `${size} byte payload is too large for the RequestResponse invocation type (limit ${MAX_REQUEST_PAYLOAD} bytes)` }), { ...amzHeaders, 'x-amzn-errortype': 'RequestTooLargeException' });
      return;
    }
    const eventText = body.length ? body.toString('utf8') : '{}';
    try {
      JSON.parse(eventText);
    } catch {
      send(res, 400, JSON.stringify({ Type: 'User', message: 'Could not parse request body into json: Unexpected character' }), { ...amzHeaders, 'x-amzn-errortype': 'InvalidRequestContentException' });
      return;
    }
    const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (invocationType === 'DryRun') {
      send(res, 204, '', amzHeaders);
      return;
    }
    const run = invokeRaw(eventText, 'invoke');
    if (invocationType === 'Event') {
      // Asynchronous invocation: accepted at once (no retries, no DLQ emulated).
      void run.outcome.catch(() => undefined);
      send(res, 202, '', amzHeaders);
      return;
    }
    const outcome = await run.outcome;
    const headers = { ...amzHeaders, 'x-amz-executed-version': '$LATEST' };
    if (outcome === 'throttled') {
      send(res, 429, JSON.stringify({ Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' }), { ...amzHeaders, 'x-amzn-errortype': 'TooManyRequestsException' });
    } else if (outcome === 'rejected') {
      send(res, 413, JSON.stringify({ Type: 'User', message: 'Request payload too large' }), { ...amzHeaders, 'x-amzn-errortype': 'RequestTooLargeException' });
    } else if (outcome.kind === 'error') {
      send(res, 200, outcome.payload, { ...headers, 'x-amz-function-error': 'Unhandled' });
    } else {
      send(res, 200, outcome.payload, headers);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const invokeMatch = /^\/2015-03-31\/functions\/([^/?]+)\/invocations(?:\?.*)?$/.exec(url);
    if (invokeMatch && req.method === 'POST') {
      await handleInvokeApi(req, res, invokeMatch[1] ?? '');
      return;
    }
    const gatewayRequestId = randomBytes(11).toString('base64');
    const gw = { 'apigw-requestid': gatewayRequestId };
    const pathname = url.split('?')[0] ?? '/';
    const route = matchRoute(cfg, pathname);
    if (!route) {
      req.resume();
      send(res, GATEWAY.notFound.status, GATEWAY.notFound.body, gw);
      return;
    }
    const { body, tooLarge } = await readBody(req, HTTP_API_MAX_BODY);
    if (tooLarge) {
      send(res, GATEWAY.tooLarge.status, GATEWAY.tooLarge.body, gw);
      return;
    }
    const port = (server.address() as AddressInfo).port;
    const event = buildEvent(cfg, apiId, req, body, route, gatewayRequestId, port);
    const run = invokeRaw(JSON.stringify(event), 'http');
    let integrationTimer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'integration-timeout'>((resolve) => {
      integrationTimer = setTimeout(() => resolve('integration-timeout'), HTTP_API_INTEGRATION_TIMEOUT_MS);
    });
    const outcome = await Promise.race([run.outcome, timedOut]);
    clearTimeout(integrationTimer);
    if (outcome === 'integration-timeout') {
      // The function keeps running on its own timeout, as it does on AWS.
      send(res, GATEWAY.integrationTimeout.status, GATEWAY.integrationTimeout.body, gw);
      return;
    }
    if (outcome === 'throttled' || outcome === 'rejected') {
      send(res, GATEWAY.invokeRejected.status, GATEWAY.invokeRejected.body, gw);
      return;
    }
    if (outcome.kind === 'error') {
      send(res, GATEWAY.functionError.status, GATEWAY.functionError.body, gw);
      return;
    }
    const mapped = mapResult(outcome.payload, warnOnce);
    if (!mapped) {
      emulatorLog(`RequestId ${run.requestId}: malformed Lambda proxy response, answering 500`);
      send(res, GATEWAY.functionError.status, GATEWAY.functionError.body, gw);
      return;
    }
    if (res.headersSent || res.destroyed) return;
    res.writeHead(mapped.status, { ...mapped.headers, ...gw });
    res.end(req.method === 'HEAD' ? undefined : mapped.body);
  }

  server.keepAliveTimeout = 5_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    process.off('exit', killAll);
    rmSync(cfg.taskRoot, { recursive: true, force: true });
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const baseUrl = `${url}${cfg.stage === '$default' ? '' : `/${cfg.stage}`}${cfg.routePrefix}`;

  const emulator: EmulatorHandle = {
    url,
    baseUrl,
    port,
    taskRoot: cfg.taskRoot,
    functionName,
    node: cfg.node,
    async invoke(event: unknown): Promise<InvokeResult> {
      const run = invokeRaw(JSON.stringify(event ?? null), 'invoke');
      const outcome = await run.outcome;
      if (outcome === 'throttled' || outcome === 'rejected') {
        const record = await run.record;
        const payload = outcome === 'throttled'
          ? JSON.stringify({ Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' })
          : JSON.stringify({ Type: 'User', message: 'Request payload too large' });
        return { kind: outcome, requestId: run.requestId, payload, record };
      }
      const record = await run.record;
      return { kind: outcome.kind, requestId: run.requestId, payload: outcome.payload, record };
    },
    records: () => records.map((r) => ({ ...r })),
    async settled(): Promise<void> {
      while (inFlight.size) await Promise.all([...inFlight]);
    },
    runtimeStats(): RuntimeStats {
      const done = records.filter((r) => r.status !== 'throttled' && r.status !== 'rejected');
      let busy = 0;
      for (const env of envs) if (env.state === 'busy' || env.state === 'initializing') busy += 1;
      return {
        invocations: done.length,
        coldStarts: done.filter((r) => r.cold).length,
        warmStarts: done.filter((r) => !r.cold).length,
        errors: done.filter((r) => r.status !== 'success').length,
        timeouts: done.filter((r) => r.status === 'timeout').length,
        outOfMemory: done.filter((r) => r.status === 'out-of-memory').length,
        throttles: stats.throttles,
        environmentsStarted: stats.environmentsStarted,
        environmentsReaped: stats.environmentsReaped,
        liveEnvironments: envs.size,
        busyEnvironments: busy,
        peakConcurrency: stats.peakConcurrency,
      };
    },
    environments: () => [...envs].map((e) => e.info()),
    async reapIdle(): Promise<number> {
      // Environments that already answered are idle a moment later: count them in.
      await Promise.all([...envs].filter((e) => e.finishing).map((e) => e.whenIdleOrDead()));
      const idle = [...envs].filter((e) => e.state === 'idle');
      for (const env of idle) env.reap();
      await Promise.all(idle.map((e) => e.exited));
      return idle.length;
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      const all = [...envs];
      for (const env of all) env.stopNow();
      await Promise.all(all.map((e) => e.exited));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      process.off('exit', killAll);
      rmSync(cfg.taskRoot, { recursive: true, force: true });
    },
  };
  return emulator;
}
