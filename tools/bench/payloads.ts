// The bench's POST /track bodies: the shared realistic generator (tools/shared/sample-events.ts) over a
// fixed set of businesses, seeded so two targets receive statistically identical traffic.
import { sampleEvents, type TrackBody } from '../shared/sample-events.ts';

export { rng } from '../shared/sample-events.ts';
export type TrackPayload = TrackBody;

/** A fixed set of businesses: every target sees the same label space, so /metrics has the same size on each. */
export const BENCH_BUSINESSES = ['bench-dental-1', 'bench-dental-2', 'bench-law-1', 'bench-repair-1', 'bench-vet-1'];

/** One generator per target and endpoint; event ids are fresh UUIDs so no request is a duplicate. */
export function trackPayloads(seed: number): () => TrackPayload {
  return sampleEvents(seed, { businesses: BENCH_BUSINESSES, conversations: 500, idPrefix: 'bench-' });
}
