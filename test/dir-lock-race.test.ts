/**
 * The embedded database folder lock under a real race: two processes, each told to lock the same
 * folder at the same wall-clock instant (they spin until it), must end with exactly one holder —
 * on an empty folder, and on a folder whose lock was left by a process killed with SIGKILL.
 * Repeated, because a check-then-write lock passes many single runs.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./helpers/dir-lock-child.ts', import.meta.url));
const ROUNDS = 10;

interface Contender {
  child: ChildProcess;
  /** Sends one command and resolves with the line it answers. */
  ask(command: string): Promise<string>;
}

async function startContender(): Promise<Contender> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: ((line: string) => void)[] = [];
  const early: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else early.push(line);
  });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`contender exited (${code}) before answering`);
  });
  exited.catch(() => {});
  const nextLine = () =>
    Promise.race([
      new Promise<string>((resolve) => {
        const line = early.shift();
        if (line !== undefined) resolve(line);
        else waiting.push(resolve);
      }),
      exited,
    ]);
  assert.equal(await nextLine(), 'ready');
  return {
    child,
    ask(command) {
      child.stdin!.write(`${command}\n`);
      return nextLine();
    },
  };
}

async function stop(c: Contender) {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = once(c.child, 'exit');
  c.child.stdin!.end();
  await exited;
}

function assertExactlyOne(answers: string[], round: number) {
  const acquired = answers.filter((a) => a === 'acquired').length;
  assert.equal(acquired, 1, `round ${round}: exactly one process may hold the folder, got ${JSON.stringify(answers)}`);
  assert.match(answers.find((a) => a !== 'acquired')!, /^refused .*already in use by process/, `round ${round}: the loser says who holds it`);
}

describe('embedded database folder lock: two processes at once', () => {
  const root = mkdtempSync(join(tmpdir(), 'lock-race-'));
  let a: Contender;
  let b: Contender;
  before(async () => {
    [a, b] = await Promise.all([startContender(), startContender()]);
  });
  after(async () => {
    await Promise.all([a, b].filter(Boolean).map(stop));
    rmSync(root, { recursive: true, force: true });
  });

  /** Both contenders lock `folder` at the same instant; each round's winner then releases. */
  async function race(folder: string, round: number) {
    const at = Date.now() + 50;
    const answers = await Promise.all([a.ask(`lock ${folder} ${at}`), b.ask(`lock ${folder} ${at}`)]);
    assertExactlyOne(answers, round);
    await Promise.all([a.ask('release'), b.ask('release')]);
  }

  it(`on an empty folder exactly one acquires, ${ROUNDS} times out of ${ROUNDS}`, async () => {
    for (let round = 1; round <= ROUNDS; round++) await race(join(root, `empty-${round}`), round);
  });

  it(`on a folder left locked by a killed process exactly one takes it over, ${ROUNDS} times out of ${ROUNDS}`, async () => {
    const folders = Array.from({ length: ROUNDS }, (_, i) => join(root, `stale-${i + 1}`));
    // One process locks every folder and is killed with SIGKILL: no release, no exit handler.
    const holder = await startContender();
    for (const folder of folders) assert.equal(await holder.ask(`lock ${folder} 0`), 'acquired');
    const killed = once(holder.child, 'exit');
    holder.child.kill('SIGKILL');
    await killed;
    for (const folder of folders) assert.ok(existsSync(join(folder, '.mlops-service.lock')), 'the killed holder left its lock');
    for (let round = 1; round <= ROUNDS; round++) await race(folders[round - 1]!, round);
  });
});
