/**
 * The Dockerfiles cannot be built here (no Docker engine); these checks catch what would break a
 * build or a start: every COPY source exists after `npm run package`, the commands name files and
 * handler exports that exist, ports and health checks match the service's defaults.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadConfig } from '../src/core/config.ts';
import { buildLambdaPackage, ROOT } from './helpers/package.ts';

interface Instruction {
  op: string;
  args: string;
}

function parse(file: string): Instruction[] {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/\\\n\s*/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => ({ op: l.split(/\s+/)[0]!.toUpperCase(), args: l.slice(l.indexOf(' ') + 1).trim() }));
}

describe('Dockerfiles', () => {
  let lambdaDir: string;
  before(() => {
    lambdaDir = join(buildLambdaPackage().dir, 'lambda');
  });

  for (const file of ['Dockerfile', 'Dockerfile.lambda']) {
    it(`${file}: pinned base images, npm ci from the lockfile, packaged in the build stage`, () => {
      const steps = parse(file);
      const froms = steps.filter((s) => s.op === 'FROM').map((s) => s.args.split(/\s+/)[0]!);
      assert.ok(froms.length >= 2, 'multi-stage');
      for (const image of froms) assert.match(image, /:[\w.-]+$/, `${image} has a tag`);
      assert.ok(steps.some((s) => s.op === 'RUN' && s.args.includes('npm ci')));
      assert.ok(steps.some((s) => s.op === 'RUN' && s.args.includes('npm run package')));
      assert.ok(existsSync(join(ROOT, 'package-lock.json')));
    });
  }

  it('Dockerfile.lambda copies the Lambda bundle and names an exported handler', async () => {
    const steps = parse('Dockerfile.lambda');
    const copy = steps.find((s) => s.op === 'COPY' && s.args.includes('dist/lambda'));
    assert.ok(copy, 'copies dist/lambda');
    const cmd = JSON.parse(steps.find((s) => s.op === 'CMD')!.args) as string[];
    const [module, fn] = cmd[0]!.split('.');
    const mod = (await import(join(lambdaDir, `${module}.mjs`))) as Record<string, unknown>;
    assert.equal(typeof mod[fn!], 'function', `${cmd[0]} is an exported function`);
  });

  it('Dockerfile runs the server bundle on the default port with a /health check', () => {
    const steps = parse('Dockerfile');
    assert.ok(steps.some((s) => s.op === 'COPY' && s.args.includes('/src/dist/server/')));
    const cmd = JSON.parse(steps.find((s) => s.op === 'CMD')!.args) as string[];
    assert.equal(cmd.at(-1), 'server.mjs');
    assert.ok(readFileSync(join(ROOT, 'scripts/package-lambda.ts'), 'utf8').includes("entryPoints: { server: 'src/adapter/node/main.ts' }"));
    const port = Number(/PORT=(\d+)/.exec(steps.find((s) => s.op === 'ENV')!.args)![1]);
    assert.equal(port, loadConfig({}).port);
    assert.equal(steps.find((s) => s.op === 'EXPOSE')!.args, String(port));
    assert.match(steps.find((s) => s.op === 'HEALTHCHECK')!.args, /\/health/);
    assert.equal(steps.filter((s) => s.op === 'USER').at(-1)?.args, 'node', 'does not run as root');
  });
});
