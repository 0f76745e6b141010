// Lambda runtime client for the local emulator: runs INSIDE each execution environment (one child
// `node` process per environment), speaking the Lambda Runtime API to the emulator exactly as the
// managed Node.js runtime does (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
//
// Plain ESM on purpose: cold-start benchmarks time this file's start-up, so it loads only Node
// built-ins (http for the Runtime API, fs/path/url/module to find the handler, util to format logs).
// Behaviour follows aws/aws-lambda-nodejs-runtime-interface-client (UserFunction.js, Errors.js,
// CallbackContext.js, LogPatch.js): same handler-string parsing, same module search order, same
// error shape ({errorType, errorMessage, trace}), same console prefix, same callback semantics.

import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { format } from 'node:util';

const RUNTIME_API = process.env.AWS_LAMBDA_RUNTIME_API ?? '';
const TASK_ROOT = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
const HANDLER = process.env._HANDLER ?? 'index.handler';
const API = '/2018-06-01/runtime';

const [apiHost, apiPortText] = RUNTIME_API.split(':');
const apiPort = Number(apiPortText);
// One keep-alive socket: the runtime only ever has one request in flight.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** Request id of the invocation in progress; Lambda prints "undefined" for init-phase logs. */
let currentRequestId;

// --- console, as LogPatch.js does it: "<ISO time>\t<request id>\t<LEVEL>\t<message>" on stdout,
// newlines turned into \r so one log call stays one CloudWatch event.
for (const [method, level] of [
  ['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'], ['debug', 'DEBUG'], ['trace', 'TRACE'],
]) {
  console[method] = (...args) => {
    const message = format(...args).replace(/\n/g, '\r');
    process.stdout.write(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${message}\n`);
  };
}

// --- errors, shaped like Errors.js#toRapidResponse
function runtimeError(name, message) {
  const error = new Error(message);
  error.name = `Runtime.${name}`;
  return error;
}

function toRapidResponse(error) {
  try {
    if (error instanceof Error || (error && typeof error.name === 'string' && typeof error.message === 'string' && typeof error.stack === 'string')) {
      return { errorType: error.name, errorMessage: error.message, trace: String(error.stack ?? '').split('\n') };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch {
    return { errorType: 'handled', errorMessage: 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack' };
  }
}

// --- Runtime API client
function call(method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: apiHost, port: apiPort, method, path: urlPath, agent, headers: body === undefined ? headers : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function postError(urlPath, error) {
  const payload = toRapidResponse(error);
  return call('POST', urlPath, JSON.stringify(payload), { 'lambda-runtime-function-error-type': payload.errorType ?? 'Unknown' });
}

function fatal(prefix, error) {
  console.error(prefix, JSON.stringify(toRapidResponse(error)));
}

// Unhandled failures end the environment, as the managed runtime does (exit 128/129 after reporting).
let initDone = false;
async function reportAndExit(error, code) {
  try {
    if (!initDone) await postError(`${API}/init/error`, error);
    else if (currentRequestId !== undefined) await postError(`${API}/invocation/${currentRequestId}/error`, error);
  } catch { /* the emulator sees the exit anyway */ }
  process.exit(code);
}
process.on('unhandledRejection', (reason) => {
  const error = runtimeError('UnhandledPromiseRejection', reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason));
  fatal('Unhandled Promise Rejection', error);
  void reportAndExit(error, 128);
});
process.on('uncaughtException', (error) => {
  fatal('Uncaught Exception', error);
  void reportAndExit(error, 129);
});

// --- handler loading, as UserFunction.js#load
function hasTypeModule(folder) {
  if (folder.endsWith(`${path.sep}node_modules`)) return false;
  const pj = path.join(folder, 'package.json');
  if (existsSync(pj)) {
    try { return JSON.parse(readFileSync(pj, 'utf8'))?.type === 'module'; } catch { return false; }
  }
  const parent = path.dirname(folder);
  return parent === folder ? false : hasTypeModule(parent);
}

async function loadModule(appRoot, moduleRoot, moduleName) {
  const require = createRequire(path.join(appRoot, 'noop.js'));
  const base = path.resolve(appRoot, moduleRoot, moduleName);
  const tryRequire = (ext) => (existsSync(base + ext) ? require(base + ext) : undefined);
  const tryImport = async (ext) => (existsSync(base + ext) ? import(pathToFileURL(base + ext).href) : undefined);

  // Order of the managed runtime: extensionless (require), .js (require unless "type": "module"),
  // .js as ESM, .mjs, .cjs, then a plain Node resolution from the task root.
  const extensionless = tryRequire('');
  if (extensionless) return extensionless;
  const typeModule = hasTypeModule(path.dirname(base));
  if (!typeModule) {
    const cjs = tryRequire('.js');
    if (cjs) return cjs;
  }
  const loaded = (typeModule && (await tryImport('.js'))) || (await tryImport('.mjs')) || tryRequire('.cjs');
  if (loaded) return loaded;
  return require(require.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

async function loadHandler(appRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw runtimeError('MalformedHandlerName', `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`);
  }
  const handlerString = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match) throw runtimeError('MalformedHandlerName', 'Bad handler');
  const [, moduleName, handlerPath] = match;

  let userModule;
  try {
    userModule = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (error) {
    if (error instanceof SyntaxError) throw runtimeError('UserCodeSyntaxError', `${error.name}: ${error.message}`);
    if (error && error.code === 'MODULE_NOT_FOUND') throw runtimeError('ImportModuleError', `${error.name}: ${error.message}`);
    throw error;
  }
  const resolve = (root) => handlerPath.split('.').reduce((obj, key) => obj && obj[key], root);
  // A CommonJS module imported as ESM exposes its exports as `default` too.
  const fn = resolve(userModule) ?? resolve(userModule?.default);
  if (!fn) throw runtimeError('HandlerNotFound', `${fullHandler} is undefined or not exported`);
  if (typeof fn !== 'function') throw runtimeError('HandlerNotFound', `${fullHandler} is not a function`);
  return fn;
}

// --- one invocation: async handlers resolve; callback handlers honour callbackWaitsForEmptyEventLoop
// by replying only when the event loop drains ('beforeExit'), like CallbackContext.js.
let onLoopEmpty = null;
process.on('beforeExit', () => {
  const pending = onLoopEmpty;
  onLoopEmpty = null;
  if (pending) pending();
});

function runHandler(fn, event, context) {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (error, result) => {
      if (settled) return;
      settled = true;
      onLoopEmpty = null;
      resolve(error !== null && error !== undefined ? { error } : { result });
    };
    const callback = (error, result) => {
      if (context.callbackWaitsForEmptyEventLoop) onLoopEmpty = () => settle(error, result);
      else settle(error, result);
    };
    context.succeed = (result) => settle(null, result);
    context.fail = (error) => settle(error ?? 'handled', undefined);
    context.done = (error, result) => settle(error, result);

    // Neither a promise nor a callback call: the runtime answers null once the loop drains.
    onLoopEmpty = () => settle(null, null);
    let returned;
    try {
      returned = fn(event, context, callback);
    } catch (error) {
      settle(error, undefined);
      return;
    }
    if (returned && typeof returned.then === 'function') {
      returned.then((result) => settle(null, result), (error) => settle(error ?? new Error('Promise rejected without a reason'), undefined));
    }
  });
}

function buildContext(headers, requestId) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const parse = (value) => {
    if (typeof value !== 'string' || value === '') return undefined;
    try { return JSON.parse(value); } catch { return undefined; }
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    // A string in the managed runtime too (it comes from the environment).
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: requestId,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    identity: parse(headers['lambda-runtime-cognito-identity']),
    clientContext: parse(headers['lambda-runtime-client-context']),
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
}

// --- main: init phase, then the invocation loop
let handler;
try {
  handler = await loadHandler(TASK_ROOT, HANDLER);
} catch (error) {
  fatal('Uncaught Exception', error);
  try { await postError(`${API}/init/error`, error); } catch { /* exit is reported regardless */ }
  process.exit(129);
}
initDone = true;

for (;;) {
  const next = await call('GET', `${API}/invocation/next`);
  const requestId = String(next.headers['lambda-runtime-aws-request-id'] ?? '');
  currentRequestId = requestId;
  const traceId = next.headers['lambda-runtime-trace-id'];
  if (typeof traceId === 'string') process.env._X_AMZN_TRACE_ID = traceId;
  else delete process.env._X_AMZN_TRACE_ID;

  let outcome;
  try {
    outcome = await runHandler(handler, JSON.parse(next.body), buildContext(next.headers, requestId));
  } catch (error) {
    outcome = { error };
  }
  if ('error' in outcome) {
    fatal('Invoke Error', outcome.error);
    await postError(`${API}/invocation/${requestId}/error`, outcome.error);
  } else {
    let body;
    try {
      body = JSON.stringify(outcome.result === undefined ? null : outcome.result);
    } catch (error) {
      await postError(`${API}/invocation/${requestId}/error`, error);
      continue;
    }
    const res = await call('POST', `${API}/invocation/${requestId}/response`, body);
    // 413 = response over 6 MB: the platform fails the invocation itself; nothing more to send.
    if (res.status >= 400 && res.status !== 413) console.error('Runtime API rejected the response:', res.status, res.body);
  }
}
