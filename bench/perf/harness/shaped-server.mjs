// Floors for the warm-server ratios: bare node:http answering with the shape of the service's
// answers (its ten headers, a request id, a body of the same size) and, for POST, reading and
// parsing the /track body. Whatever the service costs above these is its own JavaScript.
import { createServer } from 'node:http';

const fixed = {
  'content-type': 'application/json',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=15552000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'x-permitted-cross-domain-policies': 'none',
  'x-instance-id': 'shaped-peer',
  'x-cold-start': 'false',
};
const health = JSON.stringify({
  status: 'healthy', service: 'mlops-service-prometheus', timestamp: new Date().toISOString(), monitoring: 'prometheus', metrics_endpoint: '/metrics',
  environment: 'development', security: { api_key_required: false, metrics_token_required: false }, runtime: { name: 'server', instance_id: 'shaped-peer' },
  version: 'bench', database: { configured: true, kind: 'postgres' },
});
const answer = (res, body) => {
  res.writeHead(200, { ...fixed, 'x-request-id': crypto.randomUUID(), 'server-timing': 'app;dur=0.01', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};
const server = createServer((req, res) => {
  if (req.method !== 'POST') {
    req.resume();
    req.on('end', () => answer(res, health));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const event = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    answer(res, JSON.stringify({ status: 'success', message: 'Metrics tracked successfully', prometheus_updated: true, database_stored: true, id: 1, event_id: crypto.randomUUID(), duplicate: false, timestamp: new Date().toISOString(), business_id: event.business_id }));
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`LISTENING ${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
