/**
 * `npm run prices -- --check | --list`: the model price table, and which stored models it cannot
 * price. `--check` reads the configured store (DATABASE_URL, else the embedded database in
 * DATA_DIR) through the same Store as the service and exits 1 when any stored model has no price.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../src/core/config.ts';
import { loadPriceTable, PriceTableError, type PriceEntry, type PriceTable } from '../../src/core/pricing/prices.ts';
import type { ModelSeries } from '../../src/storage/types.ts';
import { defaultIo, type CliIo } from '../shared/cli-io.ts';


const HELP = `Usage: npm run prices -- (--check | --list) [--prices-file FILE]

  --check             list the model names stored in the database (with their events and
                      tokens) and the price entry each one matches; exit 1 when any has none.
                      Reads DATABASE_URL, or the embedded database in DATA_DIR (stop the
                      server first: one process per embedded database).
  --list              print the price table (USD per 1M tokens) with each entry's source and
                      the date it was checked
  --prices-file FILE  merge this override file (default: $PRICES_FILE)
  --help              this text

Exit codes: 0 fine, 1 stored models without a price, 2 usage, configuration or database error.`;

const usd = (n: number | undefined) => (n === undefined ? '-' : `$${n}`);
const int = (n: number) => n.toLocaleString('en-US');

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

function describeTable(prices: PriceTable): string {
  const overrides = prices.entries.filter((e) => e.origin === 'override').length;
  const builtIn = prices.entries.length - overrides;
  return `Price table dated ${prices.date}: ${builtIn} built-in entries${overrides ? ` + ${overrides} from the override file` : ''}.`;
}

function listTable(prices: PriceTable, io: CliIo): number {
  const out = [describeTable(prices), 'USD per 1M tokens; "cached" is the price of prompt tokens read from the vendor cache.', ''];
  const rows = [['model', 'input', 'cached', 'output', 'checked', 'origin']];
  const details = new Map<PriceEntry, string[]>();
  for (const e of prices.entries) {
    rows.push([e.name, usd(e.input_per_1m), e.cached_input_per_1m === undefined ? 'no discount' : usd(e.cached_input_per_1m), usd(e.output_per_1m), e.checked, e.origin]);
    const lines = [`    source: ${e.source}`];
    if (e.patterns.length) lines.push(`    also matches: ${e.patterns.join('  ')}`);
    const lc = e.long_context;
    if (lc) {
      const rates = [`input ${usd(lc.input_per_1m)}`, `cached ${usd(lc.cached_input_per_1m)}`, `output ${usd(lc.output_per_1m)}`];
      lines.push(`    prompts over ${int(lc.above_prompt_tokens)} tokens: ${rates.join(', ')} ('-': left unpriced)`);
    }
    details.set(e, lines);
  }
  const [header, ...body] = table(rows);
  out.push(header!);
  prices.entries.forEach((e, i) => out.push(body[i]!, ...details.get(e)!));
  io.stdout(`${out.join('\n')}\n`);
  return 0;
}

interface StoredModel {
  model_name: string;
  events: number;
  tokens: number;
  businesses: number;
}

/** One row per model name, summed over businesses (the snapshot is per business and model). */
export function storedModels(series: readonly ModelSeries[]): StoredModel[] {
  const byName = new Map<string, StoredModel>();
  for (const s of series) {
    const m = byName.get(s.model_name) ?? { model_name: s.model_name, events: 0, tokens: 0, businesses: 0 };
    m.events += Number(s.requests);
    m.tokens += Number(s.tokens_used);
    m.businesses += 1;
    byName.set(s.model_name, m);
  }
  return [...byName.values()];
}

async function check(prices: PriceTable, env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  let config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`prices: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (!config.databaseUrl) {
    const folder = resolve(config.dataDir);
    // Opening a folder that holds no database would create one (initdb): say so instead.
    if (!existsSync(join(folder, 'PG_VERSION'))) {
      io.stderr(`prices: no embedded database in ${folder} (DATA_DIR). Set DATABASE_URL to check a PostgreSQL database.\n`);
      return 2;
    }
    io.stderr(`Opening the embedded database in ${folder} (a few seconds)…\n`);
  }
  const { openStore } = await import('../../src/storage/open-store.ts');
  let store;
  try {
    store = await openStore({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      dbPoolMax: 1,
      dbConnectTimeoutMs: config.dbConnectTimeoutMs,
      dbStatementTimeoutMs: config.dbStatementTimeoutMs,
      // A check only reads: never let the read start a fold.
      foldEvery: Number.MAX_SAFE_INTEGER,
    });
  } catch (error) {
    io.stderr(`prices: cannot open the database: ${(error as Error).message}\n`);
    return 2;
  }
  try {
    io.stderr(`Reading the stored model names from ${store.description}…\n`);
    let snapshot;
    try {
      snapshot = await store.metricsSnapshot();
    } catch (error) {
      io.stderr(`prices: cannot read ${store.description}: ${(error as Error).message}\n`);
      return 2;
    }
    const models = storedModels(snapshot.models).map((m) => ({ ...m, match: prices.match(m.model_name) }));
    const out = [describeTable(prices)];
    if (models.length === 0) {
      out.push('No events stored yet: nothing to check.');
      io.stdout(`${out.join('\n')}\n`);
      return 0;
    }
    // Unpriced first, then the most tokens.
    models.sort((a, b) => Number(!!a.match) - Number(!!b.match) || b.tokens - a.tokens || a.model_name.localeCompare(b.model_name));
    const rows = [['model_name', 'events', 'tokens', 'businesses', 'price entry']];
    for (const m of models) {
      const entry = !m.match ? 'NO PRICE' : m.match.how === 'exact' ? m.match.entry.name : `${m.match.entry.name} (pattern ${m.match.pattern})`;
      rows.push([m.model_name, int(m.events), int(m.tokens), int(m.businesses), entry]);
    }
    out.push('', ...table(rows), '');
    const unpriced = models.filter((m) => !m.match);
    if (unpriced.length === 0) {
      out.push(`All ${models.length} stored model names have a price.`);
      io.stdout(`${out.join('\n')}\n`);
      return 0;
    }
    const events = unpriced.reduce((a, m) => a + m.events, 0);
    const tokens = unpriced.reduce((a, m) => a + m.tokens, 0);
    out.push(
      `${unpriced.length} of ${models.length} stored model names have no price (${int(events)} events, ${int(tokens)} tokens).`,
      'Events without api_cost_usd from these models are stored as unpriced. Add entries to a PRICES_FILE',
      '(same shape as src/core/pricing/price-table.json, with the vendor page as source), or fix the model names.',
    );
    io.stdout(`${out.join('\n')}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

export async function runPricesCli(argv: string[], env: NodeJS.ProcessEnv = process.env, io: CliIo = defaultIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        check: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        'prices-file': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    io.stderr(`prices: ${(error as Error).message}\n${HELP}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  if (values.check === values.list) {
    io.stderr(`prices: give exactly one of --check or --list.\n${HELP}\n`);
    return 2;
  }
  let prices: PriceTable;
  try {
    prices = await loadPriceTable(values['prices-file'] ?? (env.PRICES_FILE?.trim() || undefined));
  } catch (error) {
    if (error instanceof PriceTableError) {
      io.stderr(`prices: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  return values.list ? listTable(prices, io) : check(prices, env, io);
}

// Run only when executed directly (tsx tools/prices/cli.ts), not when imported by tests.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runPricesCli(process.argv.slice(2));
}
