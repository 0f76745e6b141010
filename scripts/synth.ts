/**
 * `npm run synth`: synthesizes both stacks into infra/cdk.out with the local CDK CLI, fully
 * offline: no credentials, no network, no Docker. Extra arguments go to `cdk synth`
 * (e.g. `npm run synth -- -c lambda.architecture=x86_64`, `-o /tmp/out`).
 *
 * Hermetic on purpose: AWS credentials and profiles are hidden from the CLI so it never tries to
 * look up a default account (an STS call that would hang or fail without network).
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { ConfigError } from '../infra/config.ts';
import { QUIET_FLAGS, ROOT, missingBundles, runCdk } from './cdk.ts';


const HELP = `npm run synth [-- cdk synth options]

Synthesizes MlopsLambdaStack and MlopsServerStack into infra/cdk.out without AWS credentials or
network (${QUIET_FLAGS.join(' ')}, --no-lookups, version check and telemetry off).
\`npm run synth\` builds the bundles first (\`npm run package\`: dist/lambda, dist/server); point
elsewhere with -c lambda.codeDir=... -c server.codeDir=.... Settings: infra/config.json or -c key=value.`;

/** The environment for an offline synth: no credentials, no profile, no instance metadata probe. */
export function offlineEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (/^AWS_/.test(k)) continue;
    env[k] = v;
  }
  // Keep an explicitly chosen region: it only fills CDK_DEFAULT_REGION, no call is made.
  if (base.AWS_REGION) env.AWS_REGION = base.AWS_REGION;
  env.AWS_EC2_METADATA_DISABLED = 'true';
  env.AWS_SHARED_CREDENTIALS_FILE = resolve(ROOT, 'infra', '.no-aws-credentials');
  env.AWS_CONFIG_FILE = resolve(ROOT, 'infra', '.no-aws-config');
  return env;
}

export async function main(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  let missing: Array<{ text: string }>;
  try {
    missing = missingBundles(args);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 1;
    }
    throw e;
  }
  if (missing.length > 0) {
    console.error(`Cannot synthesize: build output missing:\n${missing.map((m) => `  - ${m.text}`).join('\n')}\nRun \`npm run package\` first.`);
    return 1;
  }
  const code = await runCdk(['synth', '--quiet', '--no-lookups', ...args], { env: offlineEnv() });
  if (code === 0) console.log('Synthesized MlopsLambdaStack and MlopsServerStack (templates in infra/cdk.out unless -o was given).');
  return code;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
