/**
 * What the core knows about where it runs, supplied by the adapter (server or Lambda), plus the
 * per-instance counters behind `/health/detailed` and the instance series of `/metrics`.
 */
export type RuntimeName = 'server' | 'lambda';

export interface RuntimeInfo {
  name: RuntimeName;
  /** Unique per process (server) or execution environment (Lambda). */
  instanceId: string;
  /** Epoch ms when this process started initialising. */
  startedAt: number;
  version: string;
}

export class InstanceStats {
  requests = 0;
  /** Requests answered with a 5xx. */
  failures = 0;
  /** Requests answered with a 4xx. */
  rejected = 0;
  coldStarts = 0;
  /** Warmer and scheduled invocations (not counted as requests). */
  warmups = 0;

  record(status: number): void {
    this.requests++;
    if (status >= 500) this.failures++;
    else if (status >= 400) this.rejected++;
  }

  get errorRate(): number {
    return this.requests ? this.failures / this.requests : 0;
  }
}
