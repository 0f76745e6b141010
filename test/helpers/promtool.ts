import { spawn } from 'node:child_process';
import { IN_CI } from './skip.ts';

/** Runs `promtool check metrics` on an exposition; resolves with its output, rejects on findings. */
export function promtoolCheck(exposition: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`promtool check metrics failed (${code}):\n${out}`))));
    child.stdin.end(exposition);
  });
}

/** Never set under CI: there a missing promtool fails the check. */
export const skipPromtool = process.env.SKIP_PROMTOOL === '1' && !IN_CI ? 'promtool not installed' : false;
