/**
 * The dashboard's browser files (`GET /` for browsers, `GET /assets/<name>`).
 *
 * Run from source (tsx), they are read from src/web and node_modules/uplot on every request, so an
 * edit shows on reload. `npm run package` replaces this whole module (an esbuild plugin in
 * scripts/package-lambda.ts) with one that embeds the same files as strings: the bundles read
 * nothing from the repository at run time. The routes load it with `await import()`, so only a
 * request for the page pays for it, never a cold start of /health or /track.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface Asset {
  body: Uint8Array | string;
  type: string;
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/** Served name → content type and file (under src/web, or a package path). Read by the bundler plugin too. */
export const ASSET_FILES: Readonly<Record<string, { type: string; file: string }>> = {
  'dashboard.html': { type: 'text/html; charset=utf-8', file: 'web:dashboard.html' },
  'dashboard.js': { type: JS, file: 'web:dashboard.js' },
  'dashboard.css': { type: CSS, file: 'web:dashboard.css' },
  'charts.js': { type: JS, file: 'web:charts.js' },
  'charts.css': { type: CSS, file: 'web:charts.css' },
  'favicon.svg': { type: 'image/svg+xml', file: 'web:favicon.svg' },
  'uPlot.iife.min.js': { type: JS, file: 'uplot/dist/uPlot.iife.min.js' },
  'uPlot.min.css': { type: CSS, file: 'uplot/dist/uPlot.min.css' },
};

/** Absolute path of an asset's file in this checkout. */
export function assetPath(name: string): string | undefined {
  const spec = Object.hasOwn(ASSET_FILES, name) ? ASSET_FILES[name] : undefined;
  if (!spec) return undefined;
  if (spec.file.startsWith('web:')) return fileURLToPath(new URL(`../web/${spec.file.slice(4)}`, import.meta.url));
  return createRequire(import.meta.url).resolve(spec.file);
}

/** The asset called `name`, or undefined for any other name (no path is ever built from it). */
export async function readAsset(name: string): Promise<Asset | undefined> {
  const path = assetPath(name);
  if (!path) return undefined;
  return { body: await readFile(path, 'utf8'), type: ASSET_FILES[name]!.type };
}
