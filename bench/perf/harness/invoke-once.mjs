// Cold-start harness: a fresh process loads a handler module, invokes it once with an event read
// from a file, prints one line of timings and exits. Plain JS so the harness adds nothing to load.
// argv: <module path> <export name> <event json path>
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const started = performance.now(); // ms since the process began: Node's own start-up
const [modulePath, exportName, eventPath] = process.argv.slice(2);
const event = JSON.parse(readFileSync(eventPath, 'utf8'));
const beforeLoad = performance.now();
const mod = await import(pathToFileURL(modulePath).href);
const loaded = performance.now();
const result = await mod[exportName](event, { awsRequestId: 'bench', getRemainingTimeInMillis: () => 30000 });
const answered = performance.now();
process.stdout.write(
  `\nHARNESS ${JSON.stringify({ processStartMs: started, loadMs: loaded - beforeLoad, firstRequestMs: answered - loaded, status: result?.statusCode ?? null })}\n`,
);
process.exit(0);
