import { StoreUnavailableError } from './errors.ts';

/**
 * Group commit. Requests that arrive while a commit is in flight wait for it to finish and then
 * share the next one, so under load many requests cost one round trip and one WAL flush, while an
 * idle service commits a lone request at once (no timer, no added latency). Each caller's promise
 * settles only after the transaction holding its items has committed, or once its deadline passed.
 *
 * A job is the unit a caller submits (one event, or one all-or-nothing batch); jobs are never split.
 *
 * Deadlines make a 503 mean what it says: a job still queued when its deadline passes is dropped
 * and never committed (`WriteNotStartedError`), so a retry cannot count it twice even without an
 * idempotency id; only a job whose commit has started is answered `WriteOutcomeUnknownError`.
 */
export interface WriteBatcherOptions {
  /** Upper bound of items per commit; a single larger job still goes alone. */
  maxItems: number;
  /** Commits allowed in flight at once (bounded by the connection pool). */
  maxConcurrent: number;
  /**
   * Whether a failed shared commit should be retried job by job, so that one bad job cannot fail
   * the others. Errors that would fail every job anyway (database unreachable) return false.
   */
  retryAlone: (error: unknown) => boolean;
  /**
   * Upper bound of items waiting for a commit (in-flight items do not count), so a stalled database
   * sheds load with `WriteQueueFullError` instead of growing memory. A job arriving at an empty
   * queue is always accepted, whatever its size, since refusing it would be a 503 no retry can fix.
   * Default 10 000.
   */
  maxQueuedItems?: number;
}

export interface SubmitOptions {
  /** Longest wait for the outcome, in ms; unset: wait for the commit however long it takes. */
  deadlineMs?: number;
}

export const DEFAULT_MAX_QUEUED_ITEMS = 10_000;

const MAX_TIMER_MS = 2 ** 31 - 1;

// The three errors below keep the base's `name` (its type is that literal); `code` tells them
// apart, in logs too.

/** The deadline passed before the job's commit started: it was dropped and nothing was stored. */
export class WriteNotStartedError extends StoreUnavailableError {
  readonly code = 'write_not_started';
  constructor(readonly deadlineMs: number) {
    super(`The write was not started within ${deadlineMs} ms; nothing was stored`);
  }
}

/** The deadline passed while the job's commit was in flight: it may or may not have been stored. */
export class WriteOutcomeUnknownError extends StoreUnavailableError {
  readonly code = 'write_outcome_unknown';
  constructor(readonly deadlineMs: number) {
    super(`The database did not confirm the write within ${deadlineMs} ms; it may still be stored: retry with the same event_id`);
  }
}

/** Too many items already wait for a commit: the job was refused and nothing was stored. */
export class WriteQueueFullError extends StoreUnavailableError {
  readonly code = 'write_queue_full';
  constructor(readonly maxQueuedItems: number) {
    super(`The write queue is full (${maxQueuedItems} items waiting); nothing was stored: retry later`);
  }
}

/**
 * queued: in the queue, no commit started. running: a commit holding it is in flight.
 * waiting: its shared commit failed (so nothing of it is stored) and it awaits its own retry.
 */
type JobState = 'queued' | 'running' | 'waiting' | 'settled';

interface Job<T, R> {
  items: T[];
  state: JobState;
  timer: NodeJS.Timeout | undefined;
  resolve: (results: R[]) => void;
  reject: (error: unknown) => void;
}

export class WriteBatcher<T, R> {
  readonly #commit: (items: T[]) => Promise<R[]>;
  readonly #options: WriteBatcherOptions;
  readonly #maxQueuedItems: number;
  #queue: Job<T, R>[] = [];
  #queuedItems = 0;
  #inFlight = 0;
  /** Commits and items so far, for benchmarks and `/health/detailed`. */
  readonly stats = { commits: 0, items: 0, largestCommit: 0 };

  constructor(commit: (items: T[]) => Promise<R[]>, options: WriteBatcherOptions) {
    this.#commit = commit;
    this.#options = options;
    this.#maxQueuedItems = options.maxQueuedItems ?? DEFAULT_MAX_QUEUED_ITEMS;
  }

  /**
   * Commits `items` together (sharing the commit with other jobs) and resolves with their results.
   * Rejects at once with `WriteQueueFullError` when the queue is full; after `deadlineMs` with
   * `WriteNotStartedError` (dropped, never committed) or `WriteOutcomeUnknownError` (commit in flight).
   */
  submit(items: T[], options: SubmitOptions = {}): Promise<R[]> {
    const { deadlineMs } = options;
    if (deadlineMs !== undefined && !(deadlineMs > 0)) {
      return Promise.reject(new RangeError(`deadlineMs must be positive, got ${deadlineMs}`));
    }
    if (this.#queue.length > 0 && this.#queuedItems + items.length > this.#maxQueuedItems) {
      return Promise.reject(new WriteQueueFullError(this.#maxQueuedItems));
    }
    return new Promise<R[]>((resolve, reject) => {
      const job: Job<T, R> = { items, state: 'queued', timer: undefined, resolve, reject };
      // Beyond setTimeout's range Node would fire at once; such a deadline is no deadline.
      if (deadlineMs !== undefined && deadlineMs <= MAX_TIMER_MS) {
        job.timer = setTimeout(() => this.#expire(job, deadlineMs), deadlineMs);
        job.timer.unref(); // a waiting request must not keep the process alive by itself
      }
      this.#queue.push(job);
      this.#queuedItems += items.length;
      this.#pump();
    });
  }

  /** Jobs waiting for a commit. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Items waiting for a commit (what `maxQueuedItems` bounds). */
  get queuedItems(): number {
    return this.#queuedItems;
  }

  #expire(job: Job<T, R>, deadlineMs: number): void {
    job.timer = undefined;
    switch (job.state) {
      case 'queued': {
        const index = this.#queue.indexOf(job);
        if (index >= 0) this.#queue.splice(index, 1);
        this.#queuedItems -= job.items.length;
        this.#settle(job, () => job.reject(new WriteNotStartedError(deadlineMs)));
        return;
      }
      case 'waiting': // nothing of the failed shared commit is stored, and it will not be retried
        this.#settle(job, () => job.reject(new WriteNotStartedError(deadlineMs)));
        return;
      case 'running': // not waiting for the commit: it may still store the items
        this.#settle(job, () => job.reject(new WriteOutcomeUnknownError(deadlineMs)));
        return;
      case 'settled':
        return;
    }
  }

  #settle(job: Job<T, R>, answer: () => void): void {
    if (job.state === 'settled') return;
    job.state = 'settled';
    if (job.timer) clearTimeout(job.timer);
    job.timer = undefined;
    answer();
  }

  #pump(): void {
    while (this.#inFlight < this.#options.maxConcurrent && this.#queue.length > 0) {
      const jobs = this.#take();
      this.#inFlight++;
      void this.#run(jobs).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  #take(): Job<T, R>[] {
    const jobs: Job<T, R>[] = [this.#queue.shift()!];
    let size = jobs[0]!.items.length;
    while (this.#queue.length > 0 && size + this.#queue[0]!.items.length <= this.#options.maxItems) {
      const job = this.#queue.shift()!;
      size += job.items.length;
      jobs.push(job);
    }
    this.#queuedItems -= size;
    // Marked before the commit is called (synchronously, in #run): from here a deadline means "unknown".
    for (const job of jobs) job.state = 'running';
    return jobs;
  }

  async #run(jobs: Job<T, R>[]): Promise<void> {
    const items = jobs.flatMap((j) => j.items);
    try {
      const results = await this.#commit(items);
      this.#record(items.length);
      let offset = 0;
      for (const job of jobs) {
        const own = results.slice(offset, offset + job.items.length);
        offset += job.items.length;
        this.#settle(job, () => job.resolve(own));
      }
    } catch (error) {
      if (jobs.length === 1 || !this.#options.retryAlone(error)) {
        for (const job of jobs) this.#settle(job, () => job.reject(error));
        return;
      }
      // The shared commit failed, so none of it is stored: until retried alone, a job has not started.
      for (const job of jobs) if (job.state === 'running') job.state = 'waiting';
      // Isolate the job that failed the shared commit: every other job still commits.
      for (const job of jobs) {
        if (job.state !== 'waiting') continue; // expired: already answered, never retried
        job.state = 'running';
        try {
          const results = await this.#commit(job.items);
          this.#record(job.items.length);
          this.#settle(job, () => job.resolve(results));
        } catch (jobError) {
          this.#settle(job, () => job.reject(jobError));
        }
      }
    }
  }

  #record(items: number): void {
    this.stats.commits++;
    this.stats.items += items;
    if (items > this.stats.largestCommit) this.stats.largestCommit = items;
  }
}
