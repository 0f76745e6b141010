// The one-INSERT peer of the fan-out benchmark: the lightest honest Lambda handler for POST /track.
// Same driver as the service (postgres.js, one connection, no type fetch, named prepared statements
// unless DB_POOLED=true), same event and columns; it parses the body, stores the event with one
// INSERT (idempotent on business_id + event_id, as the service is, so `duplicate` is truthful) and
// answers 200 after the commit. No validation, routing, aggregates, metrics or logs.
import postgres from 'postgres';

const pooled = ['1', 'true', 'yes', 'on'].includes((process.env.DB_POOLED ?? '').toLowerCase());
const sql = postgres(process.env.DATABASE_URL, {
  max: 1,
  idle_timeout: 0,
  connect_timeout: 2,
  fetch_types: false,
  onnotice: () => {},
  connection: { application_name: 'fanout-peer' },
});

const COLUMNS = [
  'business_id', 'conversation_id', 'session_id', 'response_time_ms', 'success_rate', 'tokens_used', 'prompt_tokens',
  'completion_tokens', 'api_cost_usd', 'model_name', 'intent_detected', 'appointment_requested',
  'human_handoff_requested', 'appointment_booked', 'user_message_length', 'ai_response_length', 'response_type',
  'event_id', 'user_satisfaction',
];
const INSERT =
  `INSERT INTO peer_events (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}) ` +
  'ON CONFLICT (business_id, event_id) DO NOTHING RETURNING id, created_at';

const json = (statusCode, value) => ({ statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });

export async function handler(event) {
  let e;
  try {
    e = JSON.parse(event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? ''));
  } catch {
    return json(400, { error: 'bad_request', message: 'body is not JSON' });
  }
  const eventId = e.event_id ?? crypto.randomUUID();
  try {
    const rows = await sql.unsafe(
      INSERT,
      [
        e.business_id,
        e.conversation_id ?? null,
        e.session_id ?? 'anonymous',
        Math.round(e.response_time_ms),
        e.success_rate ?? 1,
        e.tokens_used,
        e.prompt_tokens ?? null,
        e.completion_tokens ?? null,
        e.api_cost_usd ?? 0,
        e.model_name ?? 'unknown',
        e.intent_detected ?? 'general',
        e.appointment_requested ?? false,
        e.human_handoff_requested ?? false,
        e.appointment_booked ?? false,
        e.user_message_length ?? 0,
        e.ai_response_length ?? 0,
        e.response_type ?? 'answer',
        eventId,
        e.user_satisfaction ?? null,
      ],
      { prepare: !pooled },
    );
    return json(200, { status: 'success', id: rows[0] ? Number(rows[0].id) : null, event_id: eventId, duplicate: rows.length === 0 });
  } catch (error) {
    return json(503, { error: 'service_unavailable', message: `${error.code ?? ''} ${error.message}`.trim() });
  }
}
