/**
 * The model price table: the shipped table is valid and sourced, names and dated snapshots match
 * the right entry, the arithmetic prices tokens the way the vendors bill them (and leaves a call
 * unpriced rather than guessing), PRICES_FILE overrides are validated entry by entry, and
 * `npm run prices -- --check` finds stored model names without a price on both backends.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { toNewEvent, validateEvent } from '../../src/core/event-schema.ts';
import builtInJson from '../../src/core/pricing/price-table.json' with { type: 'json' };
import {
  buildPriceTable,
  builtInPriceTable,
  loadPriceTable,
  MAX_STORED_COST_USD,
  PriceTableError,
  priceTokens,
  type TokenUsage,
} from '../../src/core/pricing/prices.ts';
import { openPgliteStore } from '../../src/storage/pglite.ts';
import { openPostgresStore } from '../../src/storage/postgres.ts';
import { runPricesCli } from '../../tools/prices/cli.ts';
import { BACKENDS } from '../helpers/stores.ts';

const table = builtInPriceTable();
const price = (usage: TokenUsage) => priceTokens(usage, table);
const cost = (usage: TokenUsage) => {
  const r = price(usage);
  assert.equal(r.source, 'price_table', `${usage.model} should be priced, got ${JSON.stringify(r)}`);
  return r.source === 'price_table' ? r.costUsd : NaN;
};

/** An override entry with every required field; `extra` replaces or adds fields. */
const entry = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  input_per_1m: 1,
  output_per_1m: 2,
  source: 'https://example.com/pricing',
  checked: '2026-12-01',
  ...extra,
});

const problemsOf = (override: unknown): string[] => {
  try {
    buildPriceTable(override, 'test override');
  } catch (error) {
    assert.ok(error instanceof PriceTableError, String(error));
    assert.match(error.message, /^test override is not a valid price table/);
    return error.problems;
  }
  return assert.fail('expected a PriceTableError');
};

describe('the shipped price table', () => {
  it('is dated, and every entry names its vendor pricing page and the date it was checked', () => {
    assert.match(table.date, /^\d{4}-\d{2}-\d{2}$/);
    assert.ok(table.entries.length >= 30);
    for (const e of table.entries) {
      assert.match(e.source, /^https:\/\/(developers\.openai\.com|platform\.openai\.com|platform\.claude\.com|www\.anthropic\.com|ai\.google\.dev)\//, e.name);
      assert.match(e.checked, /^\d{4}-\d{2}-\d{2}$/, e.name);
      assert.ok(e.checked <= table.date, `${e.name} checked after the table's date`);
      assert.ok(e.note && e.note.length > 20, `${e.name} says where its figures were read`);
      assert.ok(e.output_per_1m >= e.input_per_1m, `${e.name}: output is never cheaper than input`);
      if (e.cached_input_per_1m !== undefined) assert.ok(e.cached_input_per_1m < e.input_per_1m, `${e.name}: cache reads are discounted`);
    }
  });

  it('covers the course default and the common OpenAI, Anthropic and Google models', () => {
    for (const model of [
      'gemini-1.5-flash', 'gemini-1.5-pro', 'gemini-2.0-flash', 'gemini-2.5-flash', 'gemini-2.5-pro',
      'gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano', 'o3', 'o4-mini', 'gpt-5',
      'claude-3-5-sonnet-20241022', 'claude-3-7-sonnet-20250219', 'claude-sonnet-4-20250514', 'claude-opus-4-20250514',
      'claude-3-5-haiku-20241022', 'claude-haiku-4-5-20251001', 'claude-sonnet-4-5-20250929',
    ]) {
      assert.ok(table.match(model), `${model} has a price`);
    }
  });

  it('has no two entries whose patterns claim the same snapshot name', () => {
    // Every pattern must pick out only its own entry among the shipped snapshot names.
    const names = table.entries.flatMap((e) => [e.name, `${e.name}-2025-01-01`, `${e.name}-20250101`, `${e.name}-001`, `${e.name}-latest`]);
    for (const name of names) {
      const claimed = table.entries.filter((e) => e.patterns.some((p) => new RegExp(`^(?:${p})$`, 'i').test(name)));
      assert.ok(claimed.length <= 1, `${name} is claimed by ${claimed.map((e) => e.name).join(', ')}`);
    }
  });
});

describe('matching a model name', () => {
  it('finds exact names case-insensitively, and dated snapshots through the declared patterns', () => {
    assert.deepEqual(table.match('GPT-4o-Mini')?.how, 'exact');
    assert.equal(table.match('GPT-4o-Mini')?.entry.name, 'gpt-4o-mini');
    const snapshot = table.match('gpt-4o-mini-2024-07-18');
    assert.equal(snapshot?.entry.name, 'gpt-4o-mini');
    assert.equal(snapshot?.how, 'pattern');
    assert.equal(table.match('gpt-4o-2024-08-06')?.entry.name, 'gpt-4o');
    assert.equal(table.match('claude-3-5-sonnet-20240620')?.entry.name, 'claude-3-5-sonnet');
    assert.equal(table.match('claude-sonnet-4-5-20250929')?.entry.name, 'claude-sonnet-4-5');
    assert.equal(table.match('claude-sonnet-4-20250514')?.entry.name, 'claude-sonnet-4');
    assert.equal(table.match('gemini-1.5-flash-002')?.entry.name, 'gemini-1.5-flash');
    assert.equal(table.match('gemini-1.5-flash-8b-001')?.entry.name, 'gemini-1.5-flash-8b');
  });

  it('prefers an exact entry to a pattern (gpt-4o-2024-05-13 has its own, higher price)', () => {
    const m = table.match('gpt-4o-2024-05-13');
    assert.equal(m?.entry.name, 'gpt-4o-2024-05-13');
    assert.equal(m?.how, 'exact');
    assert.equal(m?.entry.input_per_1m, 5);
  });

  it('tolerates provider prefixes', () => {
    assert.equal(table.match('openai/gpt-4o')?.entry.name, 'gpt-4o');
    assert.equal(table.match('models/gemini-1.5-flash')?.entry.name, 'gemini-1.5-flash');
    assert.equal(table.match('google/gemini-2.0-flash-001')?.entry.name, 'gemini-2.0-flash');
  });

  it('leaves unknown models, previews and look-alikes unmatched', () => {
    for (const model of ['llama-3-70b', 'gemini-2.5-flash-preview-05-20', 'gpt-4o-audio-preview', 'gpt-4o-mini-tts', 'gpt-4o-x', '', 'openai/']) {
      assert.equal(table.match(model), undefined, model);
    }
  });

  it('lets the longest matching pattern win, and an override win a tie', () => {
    const t = buildPriceTable({ models: [entry('wide', { patterns: ['acme-.*'] }), entry('narrow', { patterns: ['acme-mini-.*'] })] });
    assert.equal(t.match('acme-mini-2026')?.entry.name, 'narrow');
    assert.equal(t.match('acme-large-2026')?.entry.name, 'wide');
    const tie = buildPriceTable({ models: [entry('first', { patterns: ['tie-.'] }), entry('second', { patterns: ['tie-.'] })] });
    assert.equal(tie.match('tie-x')?.entry.name, 'second', 'of equal patterns, the later entry wins');
    assert.equal(tie.match('first')?.entry.name, 'first');
    const later = buildPriceTable({ models: [entry('one', { patterns: ['gpt-4o-\\d{4}-\\d{2}-\\d{2}'] })] });
    assert.equal(later.match('gpt-4o-2024-08-06')?.entry.name, 'one', 'the override ties with the built-in pattern and wins');
  });
});

describe('pricing tokens', () => {
  it('prices the input, output and cached tokens at the entry rates, rounded to 6 decimals', () => {
    // gemini-1.5-flash: $0.075 in, $0.30 out per 1M tokens.
    assert.equal(cost({ model: 'gemini-1.5-flash', promptTokens: 1000, completionTokens: 200, totalTokens: 1200 }), 0.000135);
    assert.equal(cost({ model: 'gemini-1.5-flash', promptTokens: 100_000, completionTokens: 100_000, totalTokens: 200_000 }), 0.0375);
    // gpt-4o-mini: 600 uncached × 0.15 + 400 cached × 0.075 + 100 × 0.60 = 180 micro-dollars.
    assert.equal(cost({ model: 'gpt-4o-mini-2024-07-18', promptTokens: 1000, cachedTokens: 400, completionTokens: 100, totalTokens: 1100 }), 0.00018);
    // 7 tokens × $0.15/1M = $0.00000105 → 0.000001
    assert.equal(cost({ model: 'gpt-4o-mini', promptTokens: 7, completionTokens: 0, totalTokens: 7 }), 0.000001);
    assert.equal(cost({ model: 'gpt-4o-mini', promptTokens: 3, completionTokens: 0, totalTokens: 3 }), 0);
  });

  it('bills cached tokens at the input price when the vendor lists no cache discount', () => {
    // gpt-4o-2024-05-13: $5 in, no cached price, $15 out.
    assert.equal(cost({ model: 'gpt-4o-2024-05-13', promptTokens: 1000, cachedTokens: 1000, completionTokens: 0, totalTokens: 1000 }), 0.005);
  });

  it('caps cached tokens at the prompt', () => {
    assert.equal(
      cost({ model: 'gpt-4o-mini', promptTokens: 100, cachedTokens: 500, completionTokens: 0, totalTokens: 100 }),
      cost({ model: 'gpt-4o-mini', promptTokens: 100, cachedTokens: 100, completionTokens: 0, totalTokens: 100 }),
    );
  });

  it('leaves a call with only a total unpriced, except a call of zero tokens', () => {
    assert.deepEqual(price({ model: 'gpt-4o', totalTokens: 1200 }), { source: 'unpriced', reason: 'no_token_split' });
    assert.deepEqual(price({ model: 'gpt-4o', promptTokens: null, completionTokens: null, totalTokens: 5 }), { source: 'unpriced', reason: 'no_token_split' });
    assert.deepEqual(price({ model: 'gpt-4o', totalTokens: 0 }), { source: 'price_table', costUsd: 0, entry: 'gpt-4o' });
  });

  it('derives the missing side from the total when one side is known', () => {
    const full = cost({ model: 'gpt-4o', promptTokens: 1000, completionTokens: 200, totalTokens: 1200 });
    assert.equal(cost({ model: 'gpt-4o', promptTokens: 1000, totalTokens: 1200 }), full);
    assert.equal(cost({ model: 'gpt-4o', completionTokens: 200, totalTokens: 1200 }), full);
    assert.deepEqual(price({ model: 'gpt-4o', promptTokens: 1300, totalTokens: 1200 }), { source: 'unpriced', reason: 'inconsistent_token_counts' });
  });

  it('bills tokens the total has beyond input + output as output (thinking tokens)', () => {
    // gemini-2.5-flash: 100 × 0.30 + (50 + 250 thinking) × 2.50 = 780 micro-dollars.
    assert.equal(cost({ model: 'gemini-2.5-flash', promptTokens: 100, completionTokens: 50, totalTokens: 400 }), 0.00078);
    // A total below the split is ignored: the split is what the vendor bills.
    assert.equal(cost({ model: 'gemini-2.5-flash', promptTokens: 100, completionTokens: 50, totalTokens: 10 }), 0.000155);
  });

  it('applies long-context rates above the threshold, and leaves unknown long-context rates unpriced', () => {
    // gemini-1.5-flash: ≤ 128k at 0.075 / 0.30, above at 0.15 / 0.60 (the whole request).
    assert.equal(cost({ model: 'gemini-1.5-flash', promptTokens: 128_000, completionTokens: 1000, totalTokens: 129_000 }), 0.0099);
    assert.equal(cost({ model: 'gemini-1.5-flash', promptTokens: 128_001, completionTokens: 1000, totalTokens: 129_001 }), 0.0198);
    // claude-sonnet-4 over 200k: $6 / $22.50 known, the cached rate is not.
    assert.equal(cost({ model: 'claude-sonnet-4-20250514', promptTokens: 300_000, completionTokens: 1000, totalTokens: 301_000 }), 1.8225);
    assert.deepEqual(price({ model: 'claude-sonnet-4-20250514', promptTokens: 300_000, cachedTokens: 1000, completionTokens: 1000, totalTokens: 301_000 }), {
      source: 'unpriced',
      reason: 'long_context_rate_unknown',
    });
    assert.deepEqual(price({ model: 'claude-sonnet-4-5', promptTokens: 300_000, completionTokens: 1, totalTokens: 300_001 }), {
      source: 'unpriced',
      reason: 'long_context_rate_unknown',
    });
  });

  it('leaves unknown models unpriced, and a cost the store cannot hold', () => {
    assert.deepEqual(price({ model: 'my-local-llama', promptTokens: 1, completionTokens: 1, totalTokens: 2 }), { source: 'unpriced', reason: 'unknown_model' });
    // 2e9 output tokens of claude-opus-4 at $75/1M = $150,000, beyond DECIMAL(10,6).
    const huge = price({ model: 'claude-opus-4', promptTokens: 0, completionTokens: 2_000_000_000, totalTokens: 2_000_000_000 });
    assert.deepEqual(huge, { source: 'unpriced', reason: 'cost_above_store_limit' });
    assert.ok(cost({ model: 'claude-opus-4', promptTokens: 0, completionTokens: 133_333_333, totalTokens: 133_333_333 }) <= MAX_STORED_COST_USD);
  });

  it('rejects token counts that are not non-negative integers', () => {
    for (const usage of [
      { model: 'gpt-4o', promptTokens: -1, completionTokens: 1, totalTokens: 1 },
      { model: 'gpt-4o', promptTokens: 1.5, completionTokens: 1, totalTokens: 3 },
      { model: 'gpt-4o', promptTokens: 1, completionTokens: 1, cachedTokens: -1, totalTokens: 2 },
      { model: 'gpt-4o', promptTokens: 1, completionTokens: 1, totalTokens: Number.NaN },
    ]) {
      assert.deepEqual(price(usage), { source: 'unpriced', reason: 'inconsistent_token_counts' }, JSON.stringify(usage));
    }
  });

  it('uses the built-in table by default', () => {
    assert.deepEqual(priceTokens({ model: 'gpt-4o', promptTokens: 1000, completionTokens: 1000, totalTokens: 2000 }), {
      source: 'price_table',
      costUsd: 0.0125,
      entry: 'gpt-4o',
    });
  });
});

describe('PRICES_FILE overrides', () => {
  it('adds entries and replaces built-in ones whole, patterns included', () => {
    const t = buildPriceTable({
      models: [entry('my-local-llama', { input_per_1m: 0.5, output_per_1m: 0.5 }), entry('gpt-4o', { input_per_1m: 2, output_per_1m: 8 })],
    });
    assert.equal(priceTokens({ model: 'my-local-llama', promptTokens: 1_000_000, completionTokens: 0, totalTokens: 1_000_000 }, t).source, 'price_table');
    const gpt4o = t.match('gpt-4o')!.entry;
    assert.equal(gpt4o.input_per_1m, 2);
    assert.equal(gpt4o.origin, 'override');
    assert.equal(gpt4o.cached_input_per_1m, undefined, 'nothing is carried over from the replaced entry');
    assert.equal(t.match('gpt-4o-2024-08-06'), undefined, 'the replaced entry took its patterns with it');
    assert.equal(t.entries.length, table.entries.length + 1);
    assert.equal(t.entries.filter((e) => e.name === 'gpt-4o').length, 1);
    assert.equal(builtInPriceTable().match('gpt-4o')!.entry.input_per_1m, 2.5, 'the built-in table is untouched');
  });

  it('names the entry and the field of every problem, all at once', () => {
    const p = problemsOf({
      models: [
        entry('ok'),
        entry('negative', { input_per_1m: -1 }),
        entry('bad-regex', { patterns: ['gpt-(4o'] }),
        { name: 'no-source', input_per_1m: 1, output_per_1m: 1, checked: '2026-12-01' },
        entry('typo', { cached_input_per_1M: 0.1 }),
        entry('bad-date', { checked: '2026-13-45' }),
        entry('text-price', { output_per_1m: '2' }),
      ],
    });
    assert.equal(p.length, 6, p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('models[1] "negative" (input_per_1m): input_per_1m must be ≥ 0')), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('models[2] "bad-regex" (patterns.0)') && x.includes('valid regular expression')), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('models[3] "no-source" (source)')), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('models[4] "typo"') && x.includes('cached_input_per_1M')), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('models[5] "bad-date" (checked)')), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('models[6] "text-price" (output_per_1m)')), p.join('\n'));
  });

  it('refuses duplicate names, a missing model list and unknown top-level fields', () => {
    assert.deepEqual(problemsOf({ models: [entry('dup'), entry('DUP')] }), ['models[1] "DUP": the same name as models[0] (names are case-insensitive)']);
    assert.match(problemsOf({})[0]!, /^models: /);
    assert.match(problemsOf({ models: [], modles: [] })[0]!, /unknown field\(s\) modles/);
    assert.match(problemsOf([])[0]!, /^\(root\)/);
  });

  it('loads PRICES_FILE from disk, naming the file when it cannot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mlops-prices-'));
    try {
      const good = join(dir, 'prices.json');
      writeFileSync(good, JSON.stringify({ date: '2026-12-01', models: [entry('my-local-llama')] }));
      assert.equal((await loadPriceTable(good)).match('my-local-llama')?.entry.origin, 'override');
      assert.equal(await loadPriceTable(undefined), builtInPriceTable());
      const broken = join(dir, 'broken.json');
      writeFileSync(broken, '{"models": [');
      await assert.rejects(loadPriceTable(broken), (e: Error) => e instanceof PriceTableError && e.message.includes(broken) && /not valid JSON/.test(e.message));
      await assert.rejects(loadPriceTable(join(dir, 'missing.json')), (e: Error) => e instanceof PriceTableError && /cannot be read/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Runs the CLI in-process and captures what it prints. */
async function cli(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runPricesCli(argv, env, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('npm run prices', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mlops-prices-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints help, and refuses a missing or doubled mode with exit 2', async () => {
    const help = await cli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--check/);
    assert.equal((await cli([])).code, 2);
    assert.equal((await cli(['--check', '--list'])).code, 2);
    assert.equal((await cli(['--bogus'])).code, 2);
  });

  it('--list prints every entry with its prices, source and date', async () => {
    const { code, stdout } = await cli(['--list']);
    assert.equal(code, 0);
    assert.match(stdout, /dated 2026-12-02/);
    for (const e of builtInJson.models) {
      assert.ok(stdout.includes(`\n${e.name} `), `${e.name} listed`);
      assert.ok(stdout.includes(`source: ${e.source}`));
    }
    assert.match(stdout, /gemini-1\.5-flash\s+\$0\.075\s+\$0\.01875\s+\$0\.3\s+2026-12-02\s+built-in/);
  });

  it('--list shows the override file, and a bad one stops with the entry named', async () => {
    const file = join(dir, 'override.json');
    writeFileSync(file, JSON.stringify({ models: [entry('my-local-llama')] }));
    const listed = await cli(['--list'], { PRICES_FILE: file });
    assert.equal(listed.code, 0);
    assert.match(listed.stdout, /\+ 1 from the override file/);
    assert.match(listed.stdout, /my-local-llama\s+\$1\s+no discount\s+\$2\s+2026-12-01\s+override/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ models: [entry('oops', { output_per_1m: -2 })] }));
    const refused = await cli(['--list', '--prices-file', bad]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /models\[0\] "oops" \(output_per_1m\): output_per_1m must be ≥ 0/);
  });

  it('--check stops with exit 2 when DATA_DIR holds no database (it never creates one)', async () => {
    const empty = join(dir, 'no-database-here');
    const r = await cli(['--check'], { DATA_DIR: empty });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no embedded database in .*no-database-here/);
    const bad = await cli(['--check'], { DATABASE_URL: 'mysql://x' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /DATABASE_URL must be a postgres/);
  });

  for (const backend of BACKENDS) {
    describe(`--check on ${backend.name}`, { skip: backend.skip }, () => {
      let env: Record<string, string>;
      let cleanup: () => Promise<void>;

      before(async () => {
        ({ env, cleanup } = await backend.provision());
        const store = backend.name === 'pglite'
          ? await openPgliteStore(env.DATA_DIR!)
          : openPostgresStore({ url: env.DATABASE_URL!, poolMax: 1, connectTimeoutMs: 5000, statementTimeoutMs: 10000 });
        try {
          await store.migrate();
        } finally {
          await store.close();
        }
      });
      after(() => cleanup?.());

      it('says there is nothing to check in an empty database', async () => {
        const r = await cli(['--check'], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /No events stored yet/);
      });

      it('lists the stored model names without a price, with their events and tokens, and exits 1', async () => {
        const events = [
          ['shop-a', 'gemini-1.5-flash', 100],
          ['shop-a', 'gpt-4o-mini-2024-07-18', 50],
          ['shop-a', 'my-local-llama', 300],
          ['shop-b', 'my-local-llama', 200],
          ['shop-b', 'my-local-llama', 1],
        ].map(([business_id, model_name, tokens_used]) => {
          const v = validateEvent({ business_id, model_name, tokens_used, response_time_ms: 100 });
          assert.ok(v.ok);
          return toNewEvent(v.value, randomUUID());
        });
        const store = backend.name === 'pglite'
          ? await openPgliteStore(env.DATA_DIR!)
          : openPostgresStore({ url: env.DATABASE_URL!, poolMax: 1, connectTimeoutMs: 5000, statementTimeoutMs: 10000 });
        try {
          await store.insertEvents(events);
        } finally {
          await store.close();
        }

        const r = await cli(['--check'], env);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /Reading the stored model names from/);
        const lines = r.stdout.split('\n');
        const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? assert.fail(`no row for ${name}:\n${r.stdout}`);
        assert.match(row('my-local-llama'), /^my-local-llama\s+3\s+501\s+2\s+NO PRICE$/);
        assert.match(row('gemini-1.5-flash'), /^gemini-1\.5-flash\s+1\s+100\s+1\s+gemini-1\.5-flash$/);
        assert.match(row('gpt-4o-mini-2024-07-18'), /\s1\s+50\s+1\s+gpt-4o-mini \(pattern gpt-4o-mini-/);
        assert.ok(lines.indexOf(row('my-local-llama')) < lines.indexOf(row('gemini-1.5-flash')), 'unpriced models come first');
        assert.match(r.stdout, /1 of 3 stored model names have no price \(3 events, 501 tokens\)/);

        // Priced by an override, the same database passes.
        const file = join(dir, `${backend.name}-override.json`);
        writeFileSync(file, JSON.stringify({ models: [entry('my-local-llama')] }));
        const fixed = await cli(['--check'], { ...env, PRICES_FILE: file });
        assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
        assert.match(fixed.stdout, /All 3 stored model names have a price/);
      });
    });
  }
});
