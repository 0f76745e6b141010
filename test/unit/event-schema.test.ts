import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toNewEvent, validateBatch, validateEvent } from '../../src/core/event-schema.ts';

const valid = { business_id: 'dental-1', response_time_ms: 123.6, tokens_used: 42 };

describe('tracked event validation', () => {
  it('accepts the minimal event and applies the contract defaults', () => {
    const r = validateEvent({ ...valid, unknown_field: 'ignored' });
    assert.ok(r.ok);
    const e = toNewEvent(r.value, 'id-1');
    assert.equal(e.response_time_ms, 124, 'stored as a whole millisecond');
    assert.equal(e.success_rate, 1);
    assert.equal(e.api_cost_usd, 0);
    assert.equal(e.model_name, 'gemini-1.5-flash');
    assert.equal(e.intent_detected, 'unknown');
    assert.equal(e.response_type, 'unknown');
    assert.equal(e.appointment_booked, false);
    assert.ok(!('unknown_field' in e));
  });

  it('names a missing required field as the contract words it', () => {
    const r = validateEvent({ business_id: 'x', tokens_used: 1 });
    assert.ok(!r.ok);
    assert.equal(r.message, 'Missing required field: response_time_ms');
    assert.deepEqual(r.details, [{ field: 'response_time_ms', message: 'Missing required field: response_time_ms' }]);
  });

  it('lists every mistyped field in details', () => {
    const r = validateEvent({ business_id: '', response_time_ms: -1, tokens_used: 1.5, success_rate: 2, appointment_booked: 'yes' });
    assert.ok(!r.ok);
    assert.deepEqual(
      r.details.map((d) => d.field).sort(),
      ['appointment_booked', 'business_id', 'response_time_ms', 'success_rate', 'tokens_used'],
    );
  });

  it('accepts null for optional fields', () => {
    assert.ok(validateEvent({ ...valid, conversation_id: null, prompt_tokens: null }).ok);
  });

  it('enforces the column limits of ai_metrics', () => {
    assert.ok(!validateEvent({ ...valid, business_id: 'x'.repeat(256) }).ok);
    assert.ok(!validateEvent({ ...valid, model_name: 'x'.repeat(101) }).ok);
    assert.ok(!validateEvent({ ...valid, intent_detected: 'x'.repeat(51) }).ok);
    assert.ok(!validateEvent({ ...valid, tokens_used: 2 ** 31 }).ok);
    assert.ok(!validateEvent({ ...valid, api_cost_usd: 10000 }).ok);
  });

  it('validates batches with indexed paths and bounds', () => {
    const r = validateBatch({ events: [valid, { ...valid, tokens_used: 'many' }] });
    assert.ok(!r.ok);
    assert.equal(r.details[0]!.field, 'events[1].tokens_used');
    assert.ok(!validateBatch({ events: [] }).ok);
    assert.ok(!validateBatch({ events: Array(501).fill(valid) }).ok);
    assert.equal((validateBatch({}) as { message: string }).message, 'Missing required field: events');
  });
});
