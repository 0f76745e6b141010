/**
 * SIGTERM on the real server process, deterministically: a `POST /track` is held in flight by
 * sending its headers with `Expect: 100-continue` and withholding the body. The server's
 * `100 Continue` proves it has the request in hand before the signal; the "shutting down" log
 * line proves the signal was handled. No sleeps: every wait is on a socket event, a log line or
 * the process exit.
 *
 * - graceful: new connections are refused, the held request completes with 200 once its body
 *   arrives, with `Connection: close` (a kept-alive connection would hold the shutdown for the
 *   keep-alive timeout and could carry new requests), the event is stored, and the process exits 0;
 * - SHUTDOWN_TIMEOUT_MS: a request held forever is cut off when the timeout passes, the log says
 *   which request was abandoned, and the process exits 1 (it did not finish its work).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { call } from './helpers/http.ts';
import { freshPgliteDir } from './helpers/pglite-template.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const BUSINESS = 'shutdown';
const BODY = JSON.stringify({ business_id: BUSINESS, response_time_ms: 12, tokens_used: 3, event_id: 'held-over-sigterm' });

/** Resolves when `text` (a string or pattern) has appeared in what `read()` returns. */
function waitForText(source: NodeJS.EventEmitter, read: () => string, text: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!text.test(read())) return;
      source.off('data', check);
      source.off('close', closed);
      resolve();
    };
    const closed = () => {
      source.off('data', check);
      reject(new Error(`closed before ${what}; got:\n${read().slice(-2000)}`));
    };
    source.on('data', check);
    source.once('close', closed);
    check();
  });
}

/** A raw HTTP/1.1 connection holding a POST /track whose body has not been sent yet. */
async function holdTrackRequest(server: ServerProcess): Promise<{ socket: Socket; received: () => string }> {
  const { port } = new URL(server.url);
  const socket = connect({ host: '127.0.0.1', port: Number(port) });
  await once(socket, 'connect');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (received += d));
  socket.write(
    `POST /track HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(BODY)}\r\nExpect: 100-continue\r\n\r\n`,
  );
  // The server answers 100 Continue only once the request reached the app: it is in flight.
  await waitForText(socket, () => received, /^HTTP\/1\.1 100 Continue\r\n\r\n/, '100 Continue');
  received = '';
  return { socket, received: () => received };
}

/** Whether a new TCP connection to the server's port is refused. */
function connectionRefused(server: ServerProcess): Promise<boolean> {
  const { port } = new URL(server.url);
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: Number(port) });
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

const stdout = (server: ServerProcess) => server.child.stdout!;
const exitOf = (server: ServerProcess) => once(server.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

describe('SIGTERM on the server process', () => {
  it('refuses new connections, completes the in-flight request with 200 and Connection: close, stores it, exits 0', async () => {
    const dataDir = await freshPgliteDir();
    const server = await startServerProcess({ DATA_DIR: dataDir, SHUTDOWN_TIMEOUT_MS: '60000' });
    try {
      const held = await holdTrackRequest(server);
      const exited = exitOf(server);
      server.child.kill('SIGTERM');
      await waitForText(stdout(server), server.output, /"msg":"shutting down"/, 'the shutdown log line');
      assert.equal(await connectionRefused(server), true, 'a new connection after SIGTERM is refused');
      assert.equal(server.child.exitCode, null, 'still running while a request is in flight');

      held.socket.write(BODY);
      const closed = once(held.socket, 'close');
      await waitForText(held.socket, held.received, /\r\n\r\n[\s\S]*\}$/, 'the answer');
      const [head, body] = held.received().split('\r\n\r\n');
      assert.match(head!, /^HTTP\/1\.1 200 /);
      // Kept alive, the connection would hold the shutdown for the keep-alive timeout and could
      // carry a new request past SIGTERM.
      assert.match(head!, /^connection: close$/im, 'the answer closes its connection');
      assert.equal(JSON.parse(body!).status, 'success');
      await closed; // the server lets go of the connection once it has answered

      const [code] = await exited;
      assert.equal(code, 0);
      assert.match(server.output(), /"msg":"stopped"/);
      assert.doesNotMatch(server.output(), /abandon|shutdown timeout/i);
    } finally {
      await server.stop('SIGKILL');
    }
    // Stored: a new process on the same folder counts it.
    const again = await startServerProcess({ DATA_DIR: dataDir });
    try {
      const r = await call(`${again.url}/analytics/${BUSINESS}?days=1`);
      assert.equal(r.body.metrics.total_requests, 1);
    } finally {
      await again.stop();
    }
  });

  it('SHUTDOWN_TIMEOUT_MS: a request held past the timeout is cut off and logged as abandoned, and the process exits 1', async () => {
    const server = await startServerProcess({ DATA_DIR: await freshPgliteDir(), SHUTDOWN_TIMEOUT_MS: '300' });
    try {
      const held = await holdTrackRequest(server);
      const exited = exitOf(server);
      const closed = once(held.socket, 'close');
      server.child.kill('SIGTERM');
      await waitForText(stdout(server), server.output, /"msg":"shutting down"/, 'the shutdown log line');
      // Never sends the body: only the timeout can end this request.
      const [code] = await exited;
      await closed;
      assert.equal(held.received(), '', 'no answer was made up for the abandoned request');
      const timeoutLine = server.output().split('\n').find((l) => l.includes('shutdown timeout'));
      assert.ok(timeoutLine, `a shutdown-timeout line:\n${server.output().slice(-2000)}`);
      const logged = JSON.parse(timeoutLine) as { level: string; timeout_ms: number; abandoned: number; requests: string[] };
      assert.equal(logged.level, 'warn');
      assert.equal(logged.timeout_ms, 300);
      assert.equal(logged.abandoned, 1);
      assert.deepEqual(logged.requests, ['POST /track']);
      assert.ok(server.output().indexOf('shutdown timeout') > server.output().indexOf('shutting down'));
      assert.equal(code, 1, 'exit 1: the shutdown did not finish every request');
    } finally {
      await server.stop('SIGKILL');
    }
  });
});
