/**
 * `npm run package`: builds the deployable artifacts.
 *
 *   dist/lambda/               index.mjs (handler, migrate) + lambda_function.mjs (lambda_handler) + chunks
 *   dist/lambda-deployment.zip the same files at the zip root, for the console or CDK
 *   dist/server/               server.mjs (the Node server) + the embedded database's runtime files
 *
 * The Lambda bundle is minified with source maps, leaves out PGlite and everything a request does
 * not load (prom-client, the driver, the OpenAPI generator are split into chunks loaded on demand),
 * and fails when the zip exceeds the size budget.
 */
import { build, transform, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { zipSync, type Zippable } from 'fflate';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ASSET_FILES, assetPath } from '../src/core/dashboard.ts';

const HELP = `Usage: npm run package -- [--budget-kb 300] [--lambda-only] [--out-dir dist] [--no-minify] [--quiet]

Builds dist/lambda/ and dist/lambda-deployment.zip (Lambda handlers index.handler and
lambda_function.lambda_handler) and dist/server/ (node dist/server/server.mjs).

  --budget-kb N   fail when the zip is larger than N KiB (default 300)
  --lambda-only   skip the server bundle
  --out-dir DIR   write under DIR instead of dist/ (tests build into temporary folders)
  --no-minify     readable output, each module marked by its path (for CPU profiles:
                  bench/perf/cold-profile.ts); the size budget is not checked
  --quiet         print only the summary line
  --help          this text`;

const { values } = parseArgs({
  options: {
    'budget-kb': { type: 'string', default: '300' },
    'lambda-only': { type: 'boolean', default: false },
    'out-dir': { type: 'string' },
    'no-minify': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const budgetKb = Number(values['budget-kb']);
if (!Number.isFinite(budgetKb) || budgetKb <= 0) {
  console.error(`--budget-kb must be a positive number, got "${values['budget-kb']}"`);
  process.exit(2);
}

const ROOT = new URL('..', import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const define = { __SERVICE_VERSION__: JSON.stringify(VERSION) };
const DIST = values['out-dir'] ? resolve(values['out-dir']) : join(ROOT, 'dist');
const LAMBDA_DIR = join(DIST, 'lambda');
const ZIP = join(DIST, 'lambda-deployment.zip');
const SERVER_DIR = join(DIST, 'server');
const log = (line: string) => values.quiet || console.log(line);

// Bundled CommonJS (prom-client) calls require() for Node built-ins: give ESM output a real one.
const requireShim = "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);";

/**
 * The dashboard's files go inside the bundle: src/core/dashboard.ts (which reads src/web and
 * node_modules/uplot at run time) is replaced by a module holding the same files as strings, its
 * own scripts and styles minified. The routes import it lazily, so it becomes a chunk that only a
 * request for the page loads.
 */
const dashboardAssets: Plugin = {
  name: 'dashboard-assets',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]core[\\/]dashboard\.ts$/ }, async () => {
      const entries: string[] = [];
      const watchFiles: string[] = [];
      for (const [name, { type }] of Object.entries(ASSET_FILES)) {
        const path = assetPath(name)!;
        watchFiles.push(path);
        let text = readFileSync(path, 'utf8');
        if (/\.min\.(js|css)$/.test(name)) {
          // uPlot ships minified.
        } else if (name.endsWith('.js') || name.endsWith('.css')) {
          text = (await transform(text, { loader: name.endsWith('.js') ? 'js' : 'css', minify: true, legalComments: 'none' })).code;
        } else if (name.endsWith('.html')) {
          text = text.replace(/<!--[\s\S]*?-->/g, '').replace(/^\s+/gm, '');
        }
        entries.push(`${JSON.stringify(name)}:[${JSON.stringify(type)},${JSON.stringify(text)}]`);
      }
      const contents =
        `const A={${entries.join(',')}};` +
        'export async function readAsset(n){const a=Object.hasOwn(A,n)?A[n]:void 0;return a&&{body:a[1],type:a[0]}}';
      return { contents, loader: 'js', watchFiles };
    });
  },
};

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

function largestInputs(meta: Metafile, count: number): string {
  const byPackage = new Map<string, number>();
  for (const output of Object.values(meta.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      const key = m ? m[1]! : input.startsWith('src/') ? 'src (this service)' : input;
      byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
    }
  }
  return [...byPackage.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, bytes]) => `    ${(bytes / 1024).toFixed(1).padStart(7)} KiB  ${name}`)
    .join('\n');
}

/**
 * long.js is protobufjs's optional 64-bit integer class; the OTLP decoder configures protobufjs to
 * answer plain numbers and bigints instead (src/core/otlp/trace-proto.ts), so the bundle leaves it
 * out: protobufjs's `require("long")` meets an empty module and falls back, as when it is absent.
 */
const withoutLongJs: Plugin = {
  name: 'without-long-js',
  setup(b) {
    b.onResolve({ filter: /^long$/ }, () => ({ path: 'long', namespace: 'without-long-js' }));
    b.onLoad({ filter: /.*/, namespace: 'without-long-js' }, () => ({ contents: 'module.exports = null;', loader: 'js' }));
  },
};

/**
 * Both bundles: ESM split into chunks (what a request does not need loads later), minified, with
 * linked source maps. PGlite stays external: the Lambda bundle must not contain it (checked
 * below) and the server ships the package, which loads its WebAssembly next to its own modules.
 */
const COMMON = {
  absWorkingDir: ROOT,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: !values['no-minify'],
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  banner: { js: requireShim },
  define,
  external: ['@electric-sql/pglite'],
  plugins: [dashboardAssets, withoutLongJs],
} satisfies BuildOptions;

/**
 * The Lambda code keeps its names instead of source maps: whitespace and syntax are minified, but
 * identifiers are not renamed, so a stack trace in CloudWatch names the real functions (and a
 * line in the one-module-per-feature chunks) without `--enable-source-maps`, which reads and
 * parses every map during module load, on each cold start. Maps were half the zip.
 */
const LAMBDA_CODE = {
  minify: false,
  minifyWhitespace: !values['no-minify'],
  minifySyntax: !values['no-minify'],
  minifyIdentifiers: false,
  sourcemap: false,
} satisfies BuildOptions;

async function buildLambda(): Promise<void> {
  rmSync(LAMBDA_DIR, { recursive: true, force: true });
  // One entry point: with two, esbuild moves everything they share into a chunk behind two
  // facades, and a cold start pays one more module to resolve, read and link.
  const result = await build({
    entryPoints: { index: 'src/adapter/lambda/index.ts' },
    outdir: LAMBDA_DIR,
    ...COMMON,
    ...LAMBDA_CODE,
    metafile: true,
    logLevel: 'warning',
  });
  // lambda_function.mjs (the console's `lambda_function.lambda_handler`) re-exports index.mjs.
  await build({
    entryPoints: { lambda_function: 'src/adapter/lambda/lambda_function.ts' },
    outdir: LAMBDA_DIR,
    ...COMMON,
    ...LAMBDA_CODE,
    splitting: false,
    banner: {},
    plugins: [
      {
        name: 'index-stays-external',
        setup(b) {
          b.onResolve({ filter: /^\.\/index\.ts$/ }, () => ({ path: './index.mjs', external: true }));
        },
      },
    ],
    logLevel: 'warning',
  });
  const inputs = Object.keys(result.metafile.inputs);
  const forbidden = inputs.filter((i) => /pglite|src\/storage\/(pglite|open-store)|src\/adapter\/node/.test(i));
  if (forbidden.length) throw new Error(`the Lambda bundle must not contain ${forbidden.join(', ')}`);

  const files: Zippable = {};
  for (const path of filesUnder(LAMBDA_DIR)) {
    // A fixed date keeps the zip byte-identical for identical code (CDK and CI hash it).
    files[relative(LAMBDA_DIR, path)] = [readFileSync(path), { mtime: new Date('2026-01-01T00:00:00Z') }];
  }
  const zip = zipSync(files, { level: 9 });
  writeFileSync(ZIP, zip);
  const sizeKb = zip.length / 1024;
  const code = filesUnder(LAMBDA_DIR).filter((f) => f.endsWith('.mjs')).map((f) => [f, { bytes: statSync(f).size }] as const);
  log(`Lambda bundle: ${code.length} files, ${(code.reduce((a, [, o]) => a + o.bytes, 0) / 1024).toFixed(1)} KiB of JavaScript`);
  log(`  largest inputs:\n${largestInputs(result.metafile, 8)}`);
  const verdict = sizeKb <= budgetKb ? `within the ${budgetKb} KiB budget` : `OVER the ${budgetKb} KiB budget`;
  console.log(`${relative(process.cwd(), ZIP)}: ${sizeKb.toFixed(1)} KiB (${zip.length} bytes), ${verdict}`);
  if (sizeKb > budgetKb && !values['no-minify']) process.exit(1);
}

async function buildServer(): Promise<void> {
  rmSync(SERVER_DIR, { recursive: true, force: true });
  await build({
    entryPoints: { server: 'src/adapter/node/main.ts' },
    outdir: SERVER_DIR,
    ...COMMON,
    logLevel: 'warning',
  });
  const pglite = join(ROOT, 'node_modules', '@electric-sql', 'pglite');
  mkdirSync(join(SERVER_DIR, 'node_modules', '@electric-sql'), { recursive: true });
  cpSync(pglite, join(SERVER_DIR, 'node_modules', '@electric-sql', 'pglite'), { recursive: true });
  writeFileSync(join(SERVER_DIR, 'package.json'), `${JSON.stringify({ name: 'mlops-service-server', private: true, type: 'module' }, null, 2)}\n`);
  log(`${relative(ROOT, SERVER_DIR)}/: run with \`node --enable-source-maps ${relative(ROOT, SERVER_DIR)}/server.mjs\``);
}

mkdirSync(DIST, { recursive: true });
await buildLambda();
if (!values['lambda-only']) await buildServer();
