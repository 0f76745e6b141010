/**
 * Thin wrapper around the local AWS CDK CLI (node_modules/.bin/cdk), run from `infra/` so it
 * picks up infra/cdk.json. Used by `npm run deploy:lambda`, `deploy:server` and `destroy`:
 *
 *   tsx scripts/cdk.ts <command> [stacks...] [cdk options...]
 *
 * Notices, the version check and telemetry are always off. Deploy-type commands check for AWS
 * credentials first and say plainly what to do when there are none.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, resolvePath } from '../infra/config.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const INFRA_DIR = join(ROOT, 'infra');
export const CDK_BIN = join(ROOT, 'node_modules', '.bin', process.platform === 'win32' ? 'cdk.cmd' : 'cdk');

/** Flags that keep the CLI quiet and off the network where it can be. */
export const QUIET_FLAGS = ['--no-notices', '--no-version-reporting'];
export const QUIET_ENV: Record<string, string> = {
  CDK_DISABLE_VERSION_CHECK: '1',
  CDK_DISABLE_CLI_TELEMETRY: 'true',
  npm_config_update_notifier: 'false',
};

/** Commands that talk to AWS and therefore need credentials. */
const NEEDS_AWS = new Set(['deploy', 'destroy', 'diff', 'bootstrap', 'drift', 'import', 'watch', 'rollback', 'refactor', 'gc']);

/** Values of `-c key=value` / `--context key=value` / `--context=key=value` in an argument list. */
export function contextArgs(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    let kv: string | undefined;
    if (a === '-c' || a === '--context') kv = args[++i];
    else if (a.startsWith('--context=')) kv = a.slice('--context='.length);
    else if (a.startsWith('-c=')) kv = a.slice(3);
    if (kv === undefined) continue;
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** The code directories the app will read, after config file + `-c` overrides. */
export function codeDirs(args: string[]): { lambda: string; server: string } {
  const { config } = loadConfig({ context: contextArgs(args) });
  return { lambda: resolvePath(config.lambda.codeDir), server: resolvePath(config.server.codeDir) };
}

export interface MissingBundle {
  stack: 'MlopsLambdaStack' | 'MlopsServerStack';
  setting: 'lambda.codeDir' | 'server.codeDir';
  /** Human-readable line naming the file and the setting. */
  text: string;
}

/** Build outputs the app would need but that do not exist (empty when both bundles exist). */
export function missingBundles(args: string[]): MissingBundle[] {
  const dirs = codeDirs(args);
  const missing: MissingBundle[] = [];
  if (!existsSync(join(dirs.lambda, 'index.mjs'))) {
    missing.push({ stack: 'MlopsLambdaStack', setting: 'lambda.codeDir', text: `${join(dirs.lambda, 'index.mjs')} (lambda.codeDir)` });
  }
  if (!existsSync(join(dirs.server, 'server.mjs'))) {
    missing.push({ stack: 'MlopsServerStack', setting: 'server.codeDir', text: `${join(dirs.server, 'server.mjs')} (server.codeDir)` });
  }
  return missing;
}

/** Stacks named on the command line; all of them when none is named or with --all. */
export function selectedStacks(args: string[]): Set<string> {
  const named = args.filter((a) => /^Mlops(Lambda|Server)Stack$/.test(a));
  return new Set(named.length === 0 || args.includes('--all') ? ['MlopsLambdaStack', 'MlopsServerStack'] : named);
}

/** Best-effort detection of an AWS credential source the CLI would find (without calling AWS). */
export function credentialSource(args: string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (args.includes('--profile')) return '--profile';
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return 'AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY';
  if (env.AWS_PROFILE) return `AWS_PROFILE=${env.AWS_PROFILE}`;
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE) return 'AWS_WEB_IDENTITY_TOKEN_FILE';
  if (env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI) return 'container credentials';
  const home = env.HOME || homedir();
  const files = [env.AWS_SHARED_CREDENTIALS_FILE || join(home, '.aws', 'credentials'), env.AWS_CONFIG_FILE || join(home, '.aws', 'config')];
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    if (/aws_access_key_id|sso_session|sso_start_url|credential_process|role_arn|login_session/i.test(text)) return f;
  }
  return undefined;
}

export const NO_CREDENTIALS_MESSAGE = `No AWS credentials found.

This command talks to your AWS account, so the CDK CLI needs credentials. Any one of:
  aws configure                       (access key in ~/.aws/credentials)
  aws sso login --profile <name>      then AWS_PROFILE=<name> npm run ...
  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... [AWS_SESSION_TOKEN=...]
and a region (AWS_REGION=us-east-1, the profile's region, or "region" in infra/config.json).
First deploy in an account/region? Bootstrap it once: npx tsx scripts/cdk.ts bootstrap

On an EC2 instance or in CI with an instance/OIDC role the credentials cannot be seen from here:
set MLOPS_SKIP_CREDENTIALS_CHECK=1 to skip this check.
Nothing else in this project needs credentials: npm run synth works offline.`;

const HELP: Record<string, string> = {
  deploy: `Deploy a stack with the AWS CDK CLI (needs AWS credentials and a bootstrapped account/region).

  npm run deploy:lambda [-- cdk options]   Lambda + HTTP API stack (MlopsLambdaStack)
  npm run deploy:server [-- cdk options]   EC2 stack (MlopsServerStack)

Before: npm run package (builds dist/lambda and dist/server), and once per account/region:
  npx tsx scripts/cdk.ts bootstrap
Settings: infra/config.json or -c key=value, e.g.
  npm run deploy:lambda -- -c lambda.architecture=x86_64 -c lambda.warmer.enabled=false
Useful cdk options: --require-approval never (CI), --outputs-file out.json, --profile <name>.
The stack outputs (ApiUrl / ServerUrl ...) are printed at the end. See infra/README.md.`,
  destroy: `Delete the stacks and everything in them (log groups included) with the AWS CDK CLI.

  npm run destroy              both stacks (asks for confirmation)
  npm run destroy -- --force   without asking

Does not need dist/ to exist (placeholders are used for synthesis). Needs AWS credentials.
Left behind: the CDK bootstrap stack (CDKToolkit) and its asset bucket, and any secrets you
created yourself. See infra/README.md, "Removing everything".`,
};

function genericHelp(command: string): string {
  return `tsx scripts/cdk.ts ${command || '<command>'} [stacks...] [cdk options...]

Runs the local AWS CDK CLI from infra/ with notices, version check and telemetry off.
Commands that reach AWS (deploy, destroy, diff, bootstrap...) need credentials.
Stacks: MlopsLambdaStack, MlopsServerStack. See infra/README.md, or: npx cdk ${command || ''} --help`;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Inherit stdio (default) or capture it. */
  stdio?: 'inherit' | 'pipe';
}

/** Runs the local CDK CLI in infra/ with the quiet flags; resolves with the exit code. */
export function runCdk(args: string[], options: RunOptions = {}): Promise<number> {
  if (!existsSync(CDK_BIN)) {
    console.error(`The AWS CDK CLI is not installed (${CDK_BIN}). Run npm install (aws-cdk is a devDependency).`);
    return Promise.resolve(1);
  }
  const [command = '', ...rest] = args;
  return new Promise((resolvePromise) => {
    const child = spawn(CDK_BIN, [command, ...QUIET_FLAGS, ...rest], {
      cwd: INFRA_DIR,
      env: { ...(options.env ?? process.env), ...QUIET_ENV },
      stdio: options.stdio ?? 'inherit',
    });
    child.on('error', (e) => {
      console.error(`Could not start the CDK CLI: ${e.message}`);
      resolvePromise(1);
    });
    child.on('exit', (code, signal) => resolvePromise(code ?? (signal ? 1 : 0)));
  });
}

/**
 * Placeholder bundles for stacks that are synthesized but not deployed (the app always builds
 * both), and for `destroy`, which deletes what is deployed and never uploads code.
 */
function placeholderContext(missing: MissingBundle[]): string[] {
  if (missing.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), 'mlops-cdk-placeholder-'));
  const args: string[] = [];
  for (const m of missing) {
    const sub = join(dir, m.setting === 'lambda.codeDir' ? 'lambda' : 'server');
    mkdirSync(sub);
    if (m.setting === 'lambda.codeDir') {
      writeFileSync(join(sub, 'index.mjs'), 'export const handler = async () => ({ statusCode: 503 });\nexport const migrate = async () => ({});\n');
    } else {
      writeFileSync(join(sub, 'server.mjs'), '// placeholder: this stack is not being deployed\n');
    }
    args.push('-c', `${m.setting}=${sub}`);
  }
  return args;
}

export async function main(argv: string[]): Promise<number> {
  const [command = '', ...rest] = argv;
  if (command === '' || command === '--help' || command === '-h' || rest.includes('--help') || rest.includes('-h')) {
    console.log(HELP[command] ?? genericHelp(command));
    return 0;
  }

  let missing: MissingBundle[];
  try {
    missing = missingBundles(rest);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 1;
    }
    throw e;
  }
  // `deploy MlopsLambdaStack` needs only the Lambda bundle; `destroy` needs none.
  const selected = selectedStacks(rest);
  const needed = command === 'destroy' ? [] : missing.filter((m) => selected.has(m.stack));
  if (needed.length > 0) {
    console.error(`Build output missing:\n${needed.map((m) => `  - ${m.text}`).join('\n')}\nRun \`npm run package\` first.`);
    return 1;
  }
  const extra = placeholderContext(missing);

  if (NEEDS_AWS.has(command) && process.env.MLOPS_SKIP_CREDENTIALS_CHECK !== '1' && credentialSource(rest) === undefined) {
    console.error(NO_CREDENTIALS_MESSAGE);
    return 2;
  }
  return runCdk([command, ...rest, ...extra]);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
