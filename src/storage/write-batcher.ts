/**
 * Group commit. Requests that arrive while a commit is in flight wait for it to finish and then
 * share the next one, so under load many requests cost one round trip and one WAL flush, while an
 * idle service commits a lone request at once (no timer, no added latency). Each caller's promise
 * settles only after the transaction holding its items has committed.
 *
 * A job is the unit a caller submits (one event, or one all-or-nothing batch); jobs are never split.
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
}

interface Job<T, R> {
  items: T[];
  resolve: (results: R[]) => void;
  reject: (error: unknown) => void;
}

export class WriteBatcher<T, R> {
  readonly #commit: (items: T[]) => Promise<R[]>;
  readonly #options: WriteBatcherOptions;
  #queue: Job<T, R>[] = [];
  #inFlight = 0;
  /** Commits and items so far, for benchmarks and `/health/detailed`. */
  readonly stats = { commits: 0, items: 0, largestCommit: 0 };

  constructor(commit: (items: T[]) => Promise<R[]>, options: WriteBatcherOptions) {
    this.#commit = commit;
    this.#options = options;
  }

  submit(items: T[]): Promise<R[]> {
    return new Promise<R[]>((resolve, reject) => {
      this.#queue.push({ items, resolve, reject });
      this.#pump();
    });
  }

  get pending(): number {
    return this.#queue.length;
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
    return jobs;
  }

  async #run(jobs: Job<T, R>[]): Promise<void> {
    const items = jobs.flatMap((j) => j.items);
    try {
      const results = await this.#commit(items);
      this.#record(items.length);
      let offset = 0;
      for (const job of jobs) {
        job.resolve(results.slice(offset, offset + job.items.length));
        offset += job.items.length;
      }
    } catch (error) {
      if (jobs.length === 1 || !this.#options.retryAlone(error)) {
        for (const job of jobs) job.reject(error);
        return;
      }
      // Isolate the job that failed the shared commit: every other job still commits.
      for (const job of jobs) {
        try {
          const results = await this.#commit(job.items);
          this.#record(job.items.length);
          job.resolve(results);
        } catch (jobError) {
          job.reject(jobError);
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
