/**
 * Renders a compare report's charts to a PNG with Chromium (playwright-core), for the README:
 *
 *   tsx tools/compare/screenshot.ts reports/compare-<stamp>.html [docs/compare-report.png]
 *
 * Fails when the page logs an error or a chart draws nothing, so a broken report never becomes
 * the README picture.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { ROOT } from './render.ts';

const CHROMIUM_CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export async function screenshotReport(htmlPath: string, pngPath: string, opts: { width?: number; full?: boolean } = {}): Promise<{ charts: number }> {
  const executablePath = CHROMIUM_CANDIDATES.find((p): p is string => !!p && existsSync(p));
  if (!executablePath) throw new Error('no Chromium found (set CHROMIUM_PATH); .ci/run installs Debian\'s chromium');
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: opts.width ?? 1240, height: 900 }, deviceScaleFactor: 1 });
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    // Any request leaving the file is a bug: the report must need no network.
    page.on('request', (r) => !r.url().startsWith('file:') && !r.url().startsWith('data:') && problems.push(`network request: ${r.url()}`));
    await page.goto(pathToFileURL(resolve(htmlPath)).href);
    await page.waitForFunction(() => document.querySelectorAll('#charts .chart').length > 0);
    const drawn = await page.$$eval('#charts .chart', (els) => els.map((el) => ({ id: el.id, canvas: !!el.querySelector('canvas') })));
    const blank = drawn.filter((d) => !d.canvas).map((d) => d.id);
    if (blank.length) problems.push(`charts without a canvas: ${blank.join(', ')}`);
    if (problems.length) throw new Error(`the report did not render cleanly:\n  ${problems.join('\n  ')}`);
    const target = opts.full ? page : page.locator('#charts');
    await target.screenshot({ path: resolve(pngPath), ...(opts.full ? { fullPage: true } : {}) });
    return { charts: drawn.length };
  } finally {
    await browser.close();
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [html, png = resolve(ROOT, 'docs/compare-report.png')] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  if (!html) {
    process.stderr.write('Usage: tsx tools/compare/screenshot.ts <report.html> [out.png] [--full]\n');
    process.exit(2);
  }
  const { charts } = await screenshotReport(html, png, { full: process.argv.includes('--full') });
  process.stdout.write(`${charts} charts → ${png}\n`);
}
