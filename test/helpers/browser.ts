/**
 * Debian's Chromium driven by playwright-core, for the dashboard tests. No browser download:
 * `.ci/run` installs the `chromium` package; CHROMIUM_PATH points elsewhere if needed.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './package.ts';
import { IN_CI } from './skip.ts';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'test-artifacts');

/** Skip reason when Chromium is missing; under CI a missing browser fails instead. */
export const skipBrowser =
  existsSync(CHROMIUM_PATH) || IN_CI ? false : `Chromium not found at ${CHROMIUM_PATH} (apt-get install chromium)`;

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
  });
}

/** Everything that went wrong on a page: console errors, uncaught exceptions, failed or >= 400 requests. */
export interface PageProblems {
  console: string[];
  failed: string[];
}

export interface OpenedPage {
  page: Page;
  context: BrowserContext;
  problems: PageProblems;
  close(): Promise<void>;
}

export const KEY_STORE = 'mlops-dashboard.api-key';

export async function openPage(
  browser: Browser,
  options: { viewport?: { width: number; height: number }; apiKey?: string } = {},
): Promise<OpenedPage> {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 1440, height: 1000 },
    locale: 'en-US',
    timezoneId: 'UTC',
    colorScheme: 'light',
    deviceScaleFactor: 1,
  });
  if (options.apiKey) {
    // As if the key had been entered earlier in this tab's session.
    await context.addInitScript(([name, key]) => sessionStorage.setItem(name!, key!), [KEY_STORE, options.apiKey]);
  }
  const page = await context.newPage();
  const problems: PageProblems = { console: [], failed: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') problems.console.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.console.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => problems.failed.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.failed.push(`${r.request().method()} ${r.url()}: HTTP ${r.status()}`);
  });
  return { page, context, problems, close: () => context.close() };
}

/**
 * Pixels of a chart's canvas in colour (the series), as opposed to white background and grey
 * axes, grid and text: a chart that drew its data has many.
 */
export function seriesInk(page: Page, selector: string): Promise<number> {
  return page.locator(`${selector} canvas`).first().evaluate((canvas: HTMLCanvasElement) => {
    const ctx = canvas.getContext('2d')!;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let inked = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
      if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) inked++;
    }
    return inked;
  });
}

export async function screenshot(page: Page, name: string, fullPage = true): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}
