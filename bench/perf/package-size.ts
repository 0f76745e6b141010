/**
 * Package size: the Lambda zip against its budget. The course's Python package (Flask +
 * serverless-wsgi + psycopg2 + prometheus-client) is stated at 20–30 MB in its lab; it cannot be
 * rebuilt here (no PyPI access), so that figure is quoted, not measured.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { readFileSync } from 'node:fs';
import { printVerdicts, ROOT, table } from './lib.ts';

export const BUDGET_BYTES = 300 * 1024;
const PYTHON_ORIGINAL_BYTES = 20 * 1024 * 1024; // the lab's lower figure

export interface PackageResult {
  zipBytes: number;
  files: { name: string; bytes: number }[];
}

export function packageSize(zipPath = join(ROOT, 'dist/lambda-deployment.zip')): PackageResult {
  const zipBytes = statSync(zipPath).size;
  const files = Object.entries(unzipSync(readFileSync(zipPath)))
    .filter(([name]) => name.endsWith('.mjs'))
    .map(([name, data]) => ({ name, bytes: data.length }))
    .sort((a, b) => b.bytes - a.bytes);
  return { zipBytes, files };
}

export function printPackage(r: PackageResult): boolean {
  console.log('\nLambda package (dist/lambda-deployment.zip)\n');
  console.log(table(['module (uncompressed)', 'KiB'], r.files.map((f) => [f.name, (f.bytes / 1024).toFixed(1)])));
  console.log(`\nzip: ${(r.zipBytes / 1024).toFixed(1)} KiB; the Python original: 20–30 MB (quoted from the lab, ≈ ${Math.round(PYTHON_ORIGINAL_BYTES / r.zipBytes)}× larger)\n`);
  const verdicts = [{ name: 'zip size', measured: `${(r.zipBytes / 1024).toFixed(1)} KiB`, target: '≤ 300 KiB', met: r.zipBytes <= BUDGET_BYTES }];
  printVerdicts(verdicts);
  return verdicts.every((v) => v.met);
}
