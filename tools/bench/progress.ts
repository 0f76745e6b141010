// Progress output: a redrawn bar on a terminal, plain lines (one per stage) when stderr is a file
// or a pipe, so CI logs and `2> log` stay readable.
import type { ProgressEvent } from './bench.ts';
import { formatDuration } from './bench.ts';

export interface ProgressSink {
  update(p: ProgressEvent): void;
  /** Prints a line above the bar (or plainly). */
  line(text: string): void;
  end(): void;
}

interface Stream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function createProgress(stream: Stream = process.stderr, opts: { tty?: boolean } = {}): ProgressSink {
  const tty = opts.tty ?? Boolean(stream.isTTY);
  let lastStage = '';
  let lastDraw = 0;
  let lastWaitLine = 0;
  let drawn = false;

  const clear = () => {
    if (tty && drawn) stream.write('\r\x1b[2K');
    drawn = false;
  };

  return {
    update(p) {
      if (tty) {
        const now = Date.now();
        if (now - lastDraw < 80 && p.stage === lastStage && p.done < p.total) return;
        lastDraw = now;
        lastStage = p.stage;
        const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - 60));
        const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
        const filled = Math.round(frac * width);
        const wait = p.waitingMs !== undefined ? ` (${formatDuration(Math.ceil(p.waitingMs / 1000) * 1000)} left)` : '';
        const text = `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${p.done}/${p.total} ${p.stage}${wait}`;
        stream.write(`\r\x1b[2K${text.slice(0, (stream.columns ?? 120) - 1)}`);
        drawn = true;
        return;
      }
      if (p.waitingMs !== undefined) {
        // One line a minute while waiting out an idle timeout, not one a second.
        if (p.stage !== lastStage || Date.now() - lastWaitLine >= 60_000) {
          lastWaitLine = Date.now();
          lastStage = p.stage;
          stream.write(`${p.stage}: ${formatDuration(Math.ceil(p.waitingMs / 1000) * 1000)} left\n`);
        }
        return;
      }
      if (p.stage !== lastStage) {
        lastStage = p.stage;
        stream.write(`[${p.done}/${p.total}] ${p.stage}\n`);
      }
    },
    line(text) {
      clear();
      stream.write(`${text}\n`);
    },
    end() {
      clear();
    },
  };
}
