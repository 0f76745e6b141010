/**
 * Retention: raw events older than RETENTION_DAYS are deleted, whole UTC days at a time, while
 * their share of every total moves to the archived aggregates (counters stay monotonic). Run by a
 * server timer, and by the Lambda warmer.
 */
import type { Logger } from './logger.ts';
import type { Store } from '../storage/types.ts';

/** First UTC day kept: events before it are purged. */
export function retentionCutoff(days: number, now: Date): string {
  const cutoff = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  cutoff.setUTCDate(cutoff.getUTCDate() - (days - 1));
  return cutoff.toISOString().slice(0, 10);
}

export const RETENTION_INTERVAL_MS = 6 * 60 * 60 * 1000;

export async function applyRetention(store: Store, days: number, logger: Logger, now = new Date()): Promise<number> {
  const cutoff = retentionCutoff(days, now);
  const report = await store.purgeBefore(cutoff);
  if (report.events_deleted > 0) logger.info('retention purge', { cutoff_day: cutoff, events_deleted: report.events_deleted, retention_days: days });
  return report.events_deleted;
}

/** Runs retention now and then every six hours, without keeping the process alive. */
export function scheduleRetention(store: Store, days: number, logger: Logger): () => void {
  const run = () => applyRetention(store, days, logger).catch((error: unknown) => logger.warn('retention purge failed', { err: error }));
  void run();
  const timer = setInterval(run, RETENTION_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
