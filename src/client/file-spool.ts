/**
 * A spool on disk for `mlops-service/client` (Node only): events the client's queue cannot hold
 * during an outage, and those still unsent at `close()`, wait in a folder as JSON lines until the
 * service answers again or the next process starts.
 *
 * - Segments: `<dir>/<16-digit sequence>.jsonl`, read oldest first. An event leaves the spool only
 *   when the client releases it (delivered or dropped); a segment file is deleted once every event
 *   in it is, so appending never rewrites a file. A crash after sending but before the deletion
 *   sends those events again with their event_id: the service stores them once.
 * - Crash safety: a process appends only to segments it created itself (a new one after each
 *   start), one write per batch of lines. A crash in the middle of a write leaves at most a torn
 *   last line, alone on its line: skipped when read back and reported as `spool_unreadable`. There
 *   is no fsync: a process crash loses nothing written, a power cut may lose what the OS had not
 *   written out yet.
 * - Bounded: `maxBytes` in all (default 64 MiB; beyond it the client reports `spool_full`). Memory:
 *   one segment (`segmentBytes`, default 1 MiB) is read back at a time.
 * - One process at a time per folder (a lock file; a second process is refused at creation, a lock
 *   left by a dead process is taken over): give each process its own folder.
 *
 * ```ts
 * import { createMlopsClient } from 'mlops-service/client';
 * import { createFileSpool } from 'mlops-service/client/file-spool';
 * const mlops = createMlopsClient({ baseUrl, apiKey, spool: createFileSpool({ dir: '/var/lib/app/mlops-spool' }) });
 * process.once('SIGTERM', () => void mlops.close().then(() => process.exit(0)));
 * ```
 */
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { appendFile, readFile, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { acquireDirLock, type DirLock, type LockWording } from '../storage/dir-lock.ts';
import type { EventSpool, SpooledEvent, TrackEvent } from './index.ts';

export interface FileSpoolOptions {
  /** The folder (created if missing). */
  dir: string;
  /** Bytes on disk at most (default 64 MiB): events beyond are refused. */
  maxBytes?: number;
  /** A segment stops taking appends at this size (default 1 MiB); it is the unit read back into memory. */
  segmentBytes?: number;
}

export interface FileSpool extends EventSpool {
  readonly dir: string;
  /** Bytes on disk now. */
  bytes(): number;
  close(): Promise<void>;
}

const SEGMENT_NAME = /^(\d{16})\.jsonl$/;
const LOCK_NAME = '.mlops-client-spool.lock';
const SPOOL_FOLDER: LockWording = {
  what: (folder) => `The mlops client spool folder ${folder}`,
  elsewhere: 'give this process its own folder (createFileSpool({ dir }))',
  onlyOne: 'A spool folder serves one process: stop that process, or give this one its own folder (createFileSpool({ dir })).',
};

interface Segment {
  path: string;
  bytes: number;
  /** Lines in the file, events or unreadable. */
  lines: number;
  /** Lines handed out (or skipped as unreadable) so far. */
  next: number;
  /** The file's lines while it is being handed out. */
  loaded?: string[];
  /** Handed out and not released yet. */
  outstanding: number;
}

interface Handle {
  segment: Segment;
}

function countLines(data: Buffer): number {
  let lines = 0;
  for (let at = data.indexOf(10); at !== -1; at = data.indexOf(10, at + 1)) lines++;
  // A last line without its newline is a write a crash cut short: it counts, and is reported when read.
  return data.length > 0 && data[data.length - 1] !== 10 ? lines + 1 : lines;
}

function parseLine(line: string): TrackEvent | undefined {
  try {
    const event = JSON.parse(line);
    return event && typeof event === 'object' && !Array.isArray(event) ? event : undefined;
  } catch {
    return undefined;
  }
}

export function createFileSpool(options: FileSpoolOptions): FileSpool {
  const dir = resolve(options.dir);
  const maxBytes = options.maxBytes ?? 64 * 2 ** 20;
  const segmentBytes = options.segmentBytes ?? 2 ** 20;
  mkdirSync(dir, { recursive: true });
  const lock: DirLock = acquireDirLock(dir, { fileName: LOCK_NAME, wording: SPOOL_FOLDER });

  // What earlier processes left: counted now, read back when its turn comes. Synchronous: once, at start.
  const segments: Segment[] = [];
  let lastSequence = 0;
  for (const name of readdirSync(dir).sort()) {
    const m = SEGMENT_NAME.exec(name);
    if (!m) continue;
    lastSequence = Number(m[1]);
    const path = join(dir, name);
    const data = readFileSync(path);
    if (data.length === 0) unlinkSync(path);
    else segments.push({ path, bytes: data.length, lines: countLines(data), next: 0, outstanding: 0 });
  }
  let bytes = segments.reduce((n, s) => n + s.bytes, 0);
  let stored = segments.reduce((n, s) => n + s.lines, 0);
  let waiting = stored;
  // Never one an earlier process wrote: its torn last line must stay alone on its line.
  let writer: Segment | undefined;
  let closed = false;

  // One operation at a time: appends, reads and deletions never interleave.
  let chain: Promise<unknown> = Promise.resolve();
  function serial<T>(operation: () => Promise<T>): Promise<T> {
    const run = chain.then(() => {
      if (closed) throw new Error(`spool ${dir} is closed`);
      return operation();
    });
    chain = run.catch(() => undefined);
    return run;
  }

  function newSegment(): Segment {
    const segment: Segment = { path: join(dir, `${String(++lastSequence).padStart(16, '0')}.jsonl`), bytes: 0, lines: 0, next: 0, outstanding: 0 };
    segments.push(segment);
    return segment;
  }

  async function removeSettled() {
    for (const segment of [...segments]) {
      if (segment === writer || segment.next < segment.lines || segment.outstanding > 0) continue;
      try {
        await unlink(segment.path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      segments.splice(segments.indexOf(segment), 1);
      bytes -= segment.bytes;
    }
  }

  async function append(events: TrackEvent[]): Promise<number> {
    const lines: string[] = [];
    let size = 0;
    for (const event of events) {
      const line = `${JSON.stringify(event)}\n`;
      const lineBytes = Buffer.byteLength(line);
      if (bytes + size + lineBytes > maxBytes) break;
      lines.push(line);
      size += lineBytes;
    }
    if (lines.length === 0) return 0;
    if (!writer || writer.bytes >= segmentBytes) writer = newSegment();
    const segment = writer;
    try {
      await appendFile(segment.path, lines.join(''));
    } catch (error) {
      // Part of the write may be there: count the file as it is and append elsewhere from now on.
      writer = undefined;
      let data = Buffer.alloc(0);
      try {
        data = await readFile(segment.path);
      } catch {
        /* nothing was written */
      }
      const added = countLines(data) - segment.lines;
      segment.lines += added;
      stored += added;
      waiting += added;
      bytes += data.length - segment.bytes;
      segment.bytes = data.length;
      await removeSettled();
      throw error;
    }
    segment.bytes += size;
    segment.lines += lines.length;
    bytes += size;
    stored += lines.length;
    waiting += lines.length;
    return lines.length;
  }

  async function take(max: number): Promise<{ events: SpooledEvent[]; unreadable: number }> {
    const events: SpooledEvent[] = [];
    let unreadable = 0;
    for (const segment of segments) {
      if (events.length >= max) break;
      if (segment.next >= segment.lines) continue;
      if (!segment.loaded) {
        // Reading a segment closes it for appends: its line count is final.
        if (segment === writer) writer = undefined;
        const lines = (await readFile(segment.path, 'utf8')).split('\n');
        if (lines.at(-1) === '') lines.pop();
        segment.loaded = lines;
      }
      const loaded = segment.loaded;
      while (events.length < max && segment.next < segment.lines) {
        const event = parseLine(loaded[segment.next] ?? '');
        segment.next++;
        waiting--;
        if (event) {
          events.push({ event, handle: { segment } satisfies Handle });
          segment.outstanding++;
        } else {
          unreadable++;
          stored--;
        }
      }
      if (segment.next >= segment.lines) segment.loaded = undefined;
    }
    await removeSettled();
    return { events, unreadable };
  }

  async function release(handles: unknown[]): Promise<void> {
    for (const handle of handles) {
      const segment = (handle as Handle | undefined)?.segment;
      if (!segment || segment.outstanding === 0) continue;
      segment.outstanding--;
      stored--;
    }
    await removeSettled();
  }

  return {
    dir,
    append: (events) => serial(() => append(events)),
    take: (max) => serial(() => take(max)),
    release: (handles) => serial(() => release(handles)),
    stored: () => stored,
    waiting: () => waiting,
    bytes: () => bytes,
    close: async () => {
      if (closed) return;
      await chain;
      closed = true;
      lock.release();
    },
  };
}
