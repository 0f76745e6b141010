// The baseline for server throughput: a bare node:http server answering a small JSON object.
import { createServer } from 'node:http';

const body = JSON.stringify({ status: 'healthy', service: 'bare-node-http' });
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`LISTENING ${server.address().port}\n`));
// A clean exit on SIGTERM, so a profile or an instruction count is written.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
