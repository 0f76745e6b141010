/**
 * A process that dies with events in its spool (run by test/client-outage.test.ts, then SIGKILLed):
 * a client whose queue holds 5 events tracks 50 while the service refuses connections, waits
 * until the 45 that did not fit are written to the spool, prints their ids and idles until killed.
 * Usage: node --import tsx test/client-crash-child.ts <spool dir> <service url>
 */
import { createMlopsClient } from '../src/client/index.ts';
import { createFileSpool } from '../src/client/file-spool.ts';

const [dir, url] = process.argv.slice(2);
const client = createMlopsClient({ baseUrl: url!, spool: createFileSpool({ dir: dir! }), maxQueue: 5, logger: false });
const ids: string[] = [];
for (let i = 0; i < 50; i++) ids.push(client.track({ business_id: 'crash', response_time_ms: 10, tokens_used: i }));
// Polls for the spool writes (real I/O, no timing involved); a deadline so that a regression fails instead of hanging the suite.
const deadline = Date.now() + 20_000;
while (client.stats().spilled < 45) {
  if (Date.now() > deadline) {
    process.stderr.write(`client-crash-child: only ${client.stats().spilled} of 45 events spilled\n`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 5));
}
process.stdout.write(`${JSON.stringify({ ids, spilled: client.stats().spilled })}\n`);
setInterval(() => undefined, 60_000);
