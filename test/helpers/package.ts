/** Builds the Lambda package into a temporary folder with the real `npm run package` script. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export function buildLambdaPackage(): { dir: string; zip: string; output: string } {
  const out = mkdtempSync(join(tmpdir(), 'mlops-package-'));
  const output = execFileSync(process.execPath, ['--import', 'tsx', 'scripts/package-lambda.ts', '--lambda-only', '--out-dir', out], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return { dir: out, zip: join(out, 'lambda-deployment.zip'), output };
}
