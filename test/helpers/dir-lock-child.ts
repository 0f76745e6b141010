/**
 * A process that locks folders on command (test/dir-lock-race.test.ts runs two at once). It says
 * `ready`, then reads commands on stdin:
 *   `lock <folder> <epoch ms>`: spins until that instant (so two contenders call acquireDirLock
 *     within microseconds of each other), then prints `acquired` or `refused <message>`;
 *   `release`: releases every lock it holds and prints `released`.
 * Locks still held when stdin closes are released on exit.
 */
import { createInterface } from 'node:readline';
import { acquireDirLock, type DirLock } from '../../src/storage/dir-lock.ts';

const now = () => performance.timeOrigin + performance.now();
const held: DirLock[] = [];
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const lock = /^lock (\S+) (\d+(?:\.\d+)?)$/.exec(line);
  if (lock) {
    const at = Number(lock[2]);
    while (now() < at) {
      // Busy-wait on purpose: a timer would wake the two processes milliseconds apart.
    }
    try {
      held.push(acquireDirLock(lock[1]!));
      process.stdout.write('acquired\n');
    } catch (error) {
      process.stdout.write(`refused ${(error as Error).message.replace(/\n/g, ' ')}\n`);
    }
  } else if (line === 'release') {
    for (const l of held.splice(0)) l.release();
    process.stdout.write('released\n');
  }
});
lines.on('close', () => process.exit(0));
process.stdout.write('ready\n');
