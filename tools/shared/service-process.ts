/**
 * Starts a child process and waits for the line that says it is ready: the service (from source
 * with tsx, or the packaged `dist/server/server.mjs` as EC2 runs it) or any other server.
 * Output is always drained (a full pipe would stall the child); a start timeout kills it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The service's start-up line (logged at info: LOG_LEVEL must be info or debug to be seen). */
export const SERVICE_READY = /"msg":"listening on (http:\/\/[^ "]+)/;

export interface StartedProcess {
  /** The captured group of the ready line made a loopback URL (a bare port becomes http://127.0.0.1:port). */
  url: string;
  /** From spawn to the ready line. */
  startupMs: number;
  child: ChildProcess;
  /** What the process printed (all of it, or the last `keepOutput` characters). */
  output(): string;
  /** Sends a signal (SIGTERM by default; SIGKILL after 10 s) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  args: string[];
  env: Record<string, string>;
  ready: RegExp;
  timeoutMs?: number;
  /** Keep only this many trailing characters of output (long benchmark runs); default: all. */
  keepOutput?: number;
}

export async function startProcess(options: StartOptions): Promise<StartedProcess> {
  const started = performance.now();
  const child = spawn(process.execPath, options.args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString('utf8');
    if (options.keepOutput && out.length > options.keepOutput * 2) out = out.slice(-options.keepOutput);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`process did not start within ${timeoutMs} ms:\n${out.slice(-4000)}`));
    }, timeoutMs);
    const onData = () => {
      const m = options.ready.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      const found = m[1]!;
      resolve(/^\d+$/.test(found) ? `http://127.0.0.1:${found}` : found.replace('localhost', '127.0.0.1'));
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`process exited with ${code} before it was ready:\n${out.slice(-4000)}`));
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
  return {
    url,
    startupMs: performance.now() - started,
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit') as Promise<[number | null]>;
      child.kill(signal);
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const [code] = await exited;
      clearTimeout(force);
      return code;
    },
  };
}

/** The service on a free loopback port: `source` runs src/ with tsx, `bundle` runs dist/server. */
export function startService(
  entry: 'source' | 'bundle',
  env: Record<string, string>,
  options: Pick<StartOptions, 'timeoutMs' | 'keepOutput'> = {},
): Promise<StartedProcess> {
  const args = entry === 'source' ? ['--import', 'tsx', 'src/adapter/node/main.ts'] : ['dist/server/server.mjs'];
  return startProcess({ args, env: { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env }, ready: SERVICE_READY, ...options });
}
