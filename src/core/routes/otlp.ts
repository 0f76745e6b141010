/**
 * `POST /v1/traces`: OTLP/HTTP trace export. Model-call spans become events (see
 * otlp/spans-to-events.ts), stored in one all-or-nothing write per request; the answer is an
 * ExportTraceServiceResponse in the request's encoding, sent only after the commit.
 */
import type { MiddlewareHandler } from 'hono';
import type { App, AppContext } from '../context.ts';
import { requestSizeLimit } from '../json-body.ts';
import type { MappedCall } from '../otlp/index.ts';

export function registerOtlp(app: App, ctx: AppContext, auth: MiddlewareHandler): void {
  const max = ctx.deps.config.maxBodyBytes;
  // The decoder reads the body itself (arrayBuffer), so Hono counts a chunked one; the limit
  // applies again to the decompressed bytes (otlp/body.ts).
  const limit = requestSizeLimit(max, { adapterCounts: false });

  app.post('/v1/traces', auth, limit, async (c) => {
    const otlp = await import('../otlp/index.ts');
    const encoding = otlp.requestEncoding(c.req.header('content-type'));
    const raw = new Uint8Array(await c.req.arrayBuffer());
    const body = await otlp.decodedBody(raw, c.req.header('content-encoding'), max);
    const batch = otlp.spansToEvents(otlp.decodeExportRequest(body, encoding));
    if (batch.calls.length > 0) {
      const store = await ctx.deps.getStore();
      const { toNewEvent } = await import('../event-schema.ts');
      const toStored = (call: MappedCall) =>
        toNewEvent(call.input, call.input.event_id, ctx.deps.prices, { operation_name: call.operationName, cached_input_tokens: call.cachedInputTokens ?? null });
      await store.insertEvents(batch.calls.map(toStored));
    }
    if (batch.rejected > 0) {
      // Counts and validation messages only: span attributes (prompts included) are never logged.
      ctx.deps.logger.warn('otlp spans rejected', { request_id: c.get('requestId'), rejected: batch.rejected, reason: otlp.rejectionMessage(batch) });
    }
    const answer = otlp.exportResponse(encoding, batch);
    return c.body(answer.body as Uint8Array<ArrayBuffer> | string, 200, { 'Content-Type': answer.contentType });
  });
}
