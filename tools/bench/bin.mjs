#!/usr/bin/env node
// The `mlops-bench` command (package.json "bin"): the same CLI as `npm run bench`, with tsx
// registered in-process so the TypeScript sources run without a build step.
import { register } from 'tsx/esm/api';

register();
const { runBenchCli } = await import('./cli.ts');
process.exitCode = await runBenchCli(process.argv.slice(2));
