/** `POST /track` and `POST /track/batch`: validate, then store; answer only after the commit. */
import type { App, AppContext } from '../context.ts';
import { ApiError } from '../http-errors.ts';
import { readJsonBody, requestSizeLimit, requireObject } from '../json-body.ts';
import { textProblem } from '../text.ts';
import type { MiddlewareHandler } from 'hono';

function idempotencyKey(header: string | undefined, bodyKey: string | null | undefined): string | undefined {
  const fromHeader = header?.trim() || undefined;
  if (fromHeader && fromHeader.length > 255) {
    throw new ApiError(400, 'validation_error', 'Idempotency-Key must be at most 255 characters', [
      { field: 'Idempotency-Key', message: 'must be at most 255 characters' },
    ]);
  }
  const problem = fromHeader && textProblem(fromHeader);
  if (problem) {
    throw new ApiError(400, 'validation_error', `Idempotency-Key ${problem}`, [{ field: 'Idempotency-Key', message: problem }]);
  }
  if (fromHeader && bodyKey && fromHeader !== bodyKey) {
    throw new ApiError(400, 'validation_error', 'event_id and the Idempotency-Key header differ; send one, or the same value', [
      { field: 'event_id', message: 'differs from the Idempotency-Key header' },
    ]);
  }
  return fromHeader ?? bodyKey ?? undefined;
}

export function registerTrack(app: App, ctx: AppContext, auth: MiddlewareHandler): void {
  const max = ctx.deps.config.maxBodyBytes;
  // Validation (zod) and the price table load on the first write, not at module load: a cold
  // /health never needs them (zod is ~6 ms of CPU on Node 22: npm run bench:perf -- cold-profile).
  let schema: Promise<typeof import('../event-schema.ts')> | undefined;
  const load = () => (schema ??= import('../event-schema.ts'));
  const limit = requestSizeLimit(max, { adapterCounts: true });

  app.post('/track', auth, limit, async (c) => {
    const body = requireObject(await readJsonBody(c, max));
    const { validateEvent, toNewEvent } = await load();
    const result = validateEvent(body);
    if (!result.ok) throw new ApiError(400, 'validation_error', result.message, result.details);
    const eventId = idempotencyKey(c.req.header('idempotency-key'), result.value.event_id) ?? crypto.randomUUID();
    const store = await ctx.deps.getStore();
    const [outcome] = await store.insertEvents([toNewEvent(result.value, eventId, ctx.deps.prices)]);
    return c.json({
      status: 'success',
      message: 'Metrics tracked successfully',
      prometheus_updated: true,
      database_stored: true,
      id: outcome!.id,
      event_id: outcome!.event_id,
      duplicate: outcome!.duplicate,
      timestamp: outcome!.created_at,
    });
  });

  app.post('/track/batch', auth, limit, async (c) => {
    const body = requireObject(await readJsonBody(c, max));
    const { validateBatch, toNewEvent } = await load();
    const result = validateBatch(body);
    if (!result.ok) throw new ApiError(400, 'validation_error', result.message, result.details);
    const events = result.value.events.map((e) => toNewEvent(e, e.event_id ?? crypto.randomUUID(), ctx.deps.prices));
    const store = await ctx.deps.getStore();
    const outcomes = await store.insertEvents(events);
    const duplicates = outcomes.filter((o) => o.duplicate).length;
    return c.json({
      status: 'success',
      message: `${outcomes.length - duplicates} events stored, ${duplicates} duplicates`,
      database_stored: true,
      stored: outcomes.length - duplicates,
      duplicates,
      results: outcomes.map((o) => ({ id: o.id, event_id: o.event_id, duplicate: o.duplicate, timestamp: o.created_at })),
      timestamp: ctx.now().toISOString(),
    });
  });
}
