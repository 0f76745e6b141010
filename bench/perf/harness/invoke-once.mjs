// Cold-start harness: a fresh process loads a handler module, invokes it once with an event read
// from a file, prints one line of timings and exits. Plain JS so the harness adds nothing to load.
// argv: <module path> <export name> <event json path>
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const started = performance.now(); // ms since the process began: Node's own start-up
const [modulePath, exportName, eventPath] = process.argv.slice(2);
const event = JSON.parse(readFileSync(eventPath, 'utf8'));
// Monotonic marks in µs (the clock of --cpu-prof timestamps), so a profile splits into phases.
const markUs = () => Number(process.hrtime.bigint() / 1000n);
const beforeLoad = performance.now();
const loadStartUs = markUs();
const mod = await import(pathToFileURL(modulePath).href);
const loaded = performance.now();
const loadedUs = markUs();
const result = await mod[exportName](event, { awsRequestId: 'bench', getRemainingTimeInMillis: () => 30000 });
const answered = performance.now();
const answeredUs = markUs();
// CPU time of this process so far (user + system): far less sensitive than wall time to what
// else runs on a shared machine, so it cross-checks the wall-time ratios.
const { userCPUTime, systemCPUTime } = process.resourceUsage();
process.stdout.write(
  `\nHARNESS ${JSON.stringify({ processStartMs: started, loadMs: loaded - beforeLoad, firstRequestMs: answered - loaded, cpuMs: (userCPUTime + systemCPUTime) / 1000, status: result?.statusCode ?? null, marksUs: [loadStartUs, loadedUs, answeredUs] })}\n`,
);
process.exit(0);
