/**
 * A server's fold timer: besides folding after its own writes, a long-running process folds what
 * any process left queued (a quiet replica, a Lambda environment that went idle), so reads keep a
 * short tail. Lambda has no timer: it folds in warm-ups (adapter/lambda/handler.ts).
 */
import type { Logger } from './logger.ts';
import type { Store } from '../storage/types.ts';

export function scheduleFolding(store: Store, intervalMs: number, logger: Logger): () => void {
  if (intervalMs <= 0) return () => {};
  let failing = false;
  const run = () =>
    store.foldPending().then(
      (report) => {
        if (failing) logger.info('folding resumed', { folded: report.folded });
        failing = false;
      },
      (error: unknown) => {
        // Logged once per outage, not once a second: reads stay exact from the tail meanwhile.
        if (!failing) logger.warn('fold failed; retrying every interval', { err: error, interval_ms: intervalMs });
        failing = true;
      },
    );
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
