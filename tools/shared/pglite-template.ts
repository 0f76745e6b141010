/**
 * PGlite's first open of a folder runs initdb (7–15 s here). Suites copy one migrated, cleanly
 * closed template folder instead (well under a second).
 */
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { MIGRATIONS } from '../../src/storage/migrations/index.ts';
import { openPgliteStore } from '../../src/storage/pglite.ts';

// Named after the migrations, so a schema change builds a new template.
const schemaHash = createHash('sha256').update(JSON.stringify(MIGRATIONS)).digest('hex').slice(0, 12);
const TEMPLATE = join(tmpdir(), `mlops-pglite-template-${schemaHash}`);

let ready: Promise<void> | undefined;

async function buildTemplate(): Promise<void> {
  if (existsSync(join(TEMPLATE, 'PG_VERSION'))) return;
  const building = `${TEMPLATE}.${process.pid}.tmp`;
  rmSync(building, { recursive: true, force: true });
  const store = await openPgliteStore(building);
  await store.migrate();
  await store.close();
  try {
    cpSync(building, TEMPLATE, { recursive: true, errorOnExist: true, force: false });
  } catch {
    // Another test process finished first: its template is as good.
  }
  rmSync(building, { recursive: true, force: true });
}

/** A new folder holding a migrated, empty embedded database. */
export async function freshPgliteDir(): Promise<string> {
  ready ??= buildTemplate();
  await ready;
  const dir = mkdtempSync(join(tmpdir(), 'mlops-pglite-'));
  cpSync(TEMPLATE, dir, { recursive: true });
  return dir;
}
