/**
 * Starts the real server entry (`src/adapter/node/main.ts`) as a child process on a free port and
 * talks to it over HTTP, as a user would.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startService, type StartedProcess } from '../../tools/shared/service-process.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type ServerProcess = StartedProcess;

/** The server from source (tsx) on a free loopback port; resolves once it logs that it listens. */
export function startServerProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<ServerProcess> {
  return startService('source', env, { timeoutMs });
}

/** Runs the entry expecting it to exit (bad configuration, locked folder…); returns code + output. */
export async function runServerExpectingExit(env: Record<string, string>, timeoutMs = 60_000) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/adapter/node/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, output: out };
}
