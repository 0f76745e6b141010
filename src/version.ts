import { readFileSync } from 'node:fs';

declare const __SERVICE_VERSION__: string | undefined;

/**
 * The service version. Bundles get it inlined at build time (`define` in the package script);
 * running from source, it is read from package.json.
 */
export const VERSION: string =
  typeof __SERVICE_VERSION__ === 'string'
    ? __SERVICE_VERSION__
    : (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
