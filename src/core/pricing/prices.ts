/**
 * Model prices: the dated table shipped with the service (`price-table.json`, bundled by the JSON
 * import), optionally merged with an operator's override (`PRICES_FILE`, same shape), and the
 * arithmetic that turns one model call's tokens into US dollars.
 *
 * Runtime-free: the core passes parsed JSON to `buildPriceTable`; only `loadPriceTable` (for Node
 * adapters and tools) touches the filesystem, through a dynamic import.
 *
 * Honesty rules (the contract: an unknown cost is visibly unknown, never $0):
 * - a model matches by exact name, then by a declared pattern (longest pattern wins); otherwise
 *   the call is unpriced;
 * - a call that reports only a total (no input/output split) is unpriced: output costs 4–8× input,
 *   so any guess at the split could be off several-fold;
 * - a long prompt whose tier rate the table does not know is unpriced, not priced at the base rate.
 */
import * as z from 'zod/mini';
import builtInJson from './price-table.json' with { type: 'json' };

/** Largest cost the store's `DECIMAL(10,6)` column holds. */
export const MAX_STORED_COST_USD = 9999.999999;

const DATE = /^\d{4}-\d{2}-\d{2}$/;

const rate = (field: string) =>
  z.number({ error: `${field} must be a number (USD per 1M tokens)` }).check(z.minimum(0, `${field} must be ≥ 0`));

const isoDate = (field: string) =>
  z.string({ error: `${field} must be a date string` }).check(
    z.refine((v) => DATE.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`)), `${field} must be a date as YYYY-MM-DD`),
  );

const pattern = z.string({ error: 'each pattern must be a string' }).check(
  z.minLength(1, 'a pattern must not be empty'),
  z.refine((p) => {
    try {
      new RegExp(p);
      return true;
    } catch {
      return false;
    }
  }, 'a pattern must be a valid regular expression'),
);

const longContextSchema = z.strictObject({
  above_prompt_tokens: z.int({ error: 'long_context.above_prompt_tokens must be an integer' }).check(
    z.minimum(1, 'long_context.above_prompt_tokens must be ≥ 1'),
  ),
  input_per_1m: z.optional(rate('long_context.input_per_1m')),
  cached_input_per_1m: z.optional(rate('long_context.cached_input_per_1m')),
  output_per_1m: z.optional(rate('long_context.output_per_1m')),
});

const entrySchema = z.strictObject({
  name: z.string({ error: 'name must be a string' }).check(
    z.minLength(1, 'name must not be empty'),
    z.maxLength(100, 'name must be at most 100 characters (the stored model_name limit)'),
  ),
  patterns: z.optional(z.array(pattern, { error: 'patterns must be a list of regular expressions' })),
  input_per_1m: rate('input_per_1m'),
  /** Absent: the vendor has no cache discount, cached tokens cost the input price. */
  cached_input_per_1m: z.optional(rate('cached_input_per_1m')),
  output_per_1m: rate('output_per_1m'),
  long_context: z.optional(longContextSchema),
  source: z.string({ error: 'source must be a string (the vendor pricing page)' }).check(z.minLength(1, 'source must not be empty')),
  checked: isoDate('checked'),
  note: z.optional(z.string({ error: 'note must be a string' })),
});

const fileSchema = z.strictObject({
  date: z.optional(isoDate('date')),
  currency: z.optional(z.literal('USD', { error: 'currency must be "USD"' })),
  unit: z.optional(z.string()),
  about: z.optional(z.array(z.string())),
  models: z.array(entrySchema, { error: 'models must be a list of price entries' }),
});

export type PriceEntryInput = z.infer<typeof entrySchema>;
export type PriceFile = z.infer<typeof fileSchema>;

export interface PriceEntry extends PriceEntryInput {
  patterns: string[];
  /** `built-in` (price-table.json) or `override` (PRICES_FILE). */
  origin: 'built-in' | 'override';
}

export interface PriceMatch {
  entry: PriceEntry;
  how: 'exact' | 'pattern';
  /** The pattern that matched (how = 'pattern'). */
  pattern?: string;
}

/** A price file that does not validate; every problem names the entry it is in. */
export class PriceTableError extends Error {
  override readonly name = 'PriceTableError';
  constructor(
    readonly problems: string[],
    readonly origin: string,
  ) {
    super(`${origin} is not a valid price table:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

function entryLabel(data: unknown, index: number): string {
  const models = (data as { models?: unknown } | null)?.models;
  const name = Array.isArray(models) ? (models[index] as { name?: unknown } | undefined)?.name : undefined;
  return typeof name === 'string' && name ? `models[${index}] "${name}"` : `models[${index}]`;
}

/** Validates one price file (the built-in table or an override); throws PriceTableError. */
export function parsePriceFile(data: unknown, origin: string): PriceFile {
  const result = fileSchema.safeParse(data);
  const problems: string[] = [];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const message = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
      const [head, index, ...rest] = issue.path;
      if (head === 'models' && typeof index === 'number') {
        const where = rest.length ? ` (${rest.map(String).join('.')})` : '';
        problems.push(`${entryLabel(data, index)}${where}: ${message}`);
      } else {
        problems.push(`${issue.path.length ? issue.path.map(String).join('.') : '(root)'}: ${message}`);
      }
    }
    throw new PriceTableError(problems, origin);
  }
  const seen = new Map<string, number>();
  result.data.models.forEach((m, i) => {
    const key = m.name.trim().toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) problems.push(`models[${i}] "${m.name}": the same name as models[${first}] (names are case-insensitive)`);
    else seen.set(key, i);
  });
  if (problems.length) throw new PriceTableError(problems, origin);
  return result.data;
}

interface CompiledPattern {
  source: string;
  regex: RegExp;
  /** Later definitions win ties; override entries come after every built-in one. */
  rank: number;
  entry: PriceEntry;
}

/** The merged table; `match` finds a model's entry. Build with `buildPriceTable`. */
export class PriceTable {
  readonly #byName = new Map<string, PriceEntry>();
  readonly #patterns: CompiledPattern[] = [];

  constructor(
    /** Date of the built-in table. */
    readonly date: string,
    /** Built-in entries not overridden (in table order), then the override's entries (in file order). */
    readonly entries: readonly PriceEntry[],
  ) {
    entries.forEach((entry, rank) => {
      this.#byName.set(entry.name.trim().toLowerCase(), entry);
      for (const source of entry.patterns) this.#patterns.push({ source, regex: new RegExp(`^(?:${source})$`, 'i'), rank, entry });
    });
  }

  /**
   * Exact name first (case-insensitive), then the longest matching pattern; the same two steps
   * again without a provider prefix (`openai/gpt-4o`, `models/gemini-1.5-flash`).
   */
  match(model: string): PriceMatch | undefined {
    const name = model.trim().toLowerCase();
    const slash = name.lastIndexOf('/');
    const candidates = slash >= 0 ? [name, name.slice(slash + 1)] : [name];
    for (const candidate of candidates) {
      if (!candidate) continue;
      const exact = this.#byName.get(candidate);
      if (exact) return { entry: exact, how: 'exact' };
      let best: CompiledPattern | undefined;
      for (const p of this.#patterns) {
        if (!p.regex.test(candidate)) continue;
        if (!best || p.source.length > best.source.length || (p.source.length === best.source.length && p.rank > best.rank)) best = p;
      }
      if (best) return { entry: best.entry, how: 'pattern', pattern: best.source };
    }
    return undefined;
  }
}

function withOrigin(entries: PriceEntryInput[], origin: PriceEntry['origin']): PriceEntry[] {
  return entries.map((e) => ({ ...e, patterns: e.patterns ?? [], origin }));
}

/**
 * The built-in table merged with an override (the parsed JSON of `PRICES_FILE`): an override entry
 * replaces the built-in entry of the same name (whole, patterns included) or adds a new one.
 * `origin` names the override in error messages.
 */
export function buildPriceTable(override?: unknown, origin = 'PRICES_FILE'): PriceTable {
  const builtIn = parsePriceFile(builtInJson, 'built-in price table');
  const base = withOrigin(builtIn.models, 'built-in');
  if (override === undefined) return new PriceTable(builtIn.date ?? '', base);
  const extra = withOrigin(parsePriceFile(override, origin).models, 'override');
  const replaced = new Set(extra.map((e) => e.name.trim().toLowerCase()));
  return new PriceTable(builtIn.date ?? '', [...base.filter((e) => !replaced.has(e.name.trim().toLowerCase())), ...extra]);
}

let builtInTable: PriceTable | undefined;

/** The built-in table alone (validated once, on first use). */
export function builtInPriceTable(): PriceTable {
  builtInTable ??= buildPriceTable();
  return builtInTable;
}

/**
 * For Node adapters and tools: the built-in table, merged with the JSON file at `pricesFile`
 * (`PRICES_FILE`) when given. Throws PriceTableError naming the file and the bad entries.
 */
export async function loadPriceTable(pricesFile: string | undefined): Promise<PriceTable> {
  if (!pricesFile) return builtInPriceTable();
  const origin = `PRICES_FILE ${pricesFile}`;
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(pricesFile, 'utf8');
  } catch (error) {
    throw new PriceTableError([`cannot be read: ${(error as Error).message}`], origin);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PriceTableError([`is not valid JSON: ${(error as Error).message}`], origin);
  }
  return buildPriceTable(json, origin);
}

export interface TokenUsage {
  model: string;
  /** Input tokens, cached ones included (OpenAI `prompt_tokens`, Gemini `promptTokenCount`). */
  promptTokens?: number | null;
  /** Output tokens (reasoning tokens included where the vendor counts them there). */
  completionTokens?: number | null;
  /** The part of `promptTokens` read from the vendor's prompt cache. */
  cachedTokens?: number | null;
  /** All tokens of the call (the event's `tokens_used`). */
  totalTokens: number;
}

export type UnpricedReason =
  | 'unknown_model'
  | 'no_token_split'
  | 'inconsistent_token_counts'
  | 'long_context_rate_unknown'
  | 'cost_above_store_limit';

export type PriceResult =
  | { source: 'price_table'; costUsd: number; entry: string }
  | { source: 'unpriced'; reason: UnpricedReason };

const isCount = (n: number | null | undefined): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

/**
 * The cost of one model call, rounded to 6 decimals like the stored `api_cost_usd`.
 *
 * Token split: input = `promptTokens` (of which `cachedTokens`, capped at the input, pay the cached
 * rate); output = `completionTokens`. When only one side is known, the other is `totalTokens` minus
 * it (the contract's `tokens_used` = input + output). When `totalTokens` exceeds input + output, the
 * surplus is billed as output: that is how vendors that report thinking tokens outside the
 * completion count (Gemini's `thoughtsTokenCount`) bill them. With neither side known the call is
 * unpriced (`no_token_split`), except a call of zero tokens, which costs nothing.
 */
export function priceTokens(usage: TokenUsage, table: PriceTable = builtInPriceTable()): PriceResult {
  const found = table.match(usage.model);
  if (!found) return { source: 'unpriced', reason: 'unknown_model' };
  const { entry } = found;
  const total = usage.totalTokens;
  if (!isCount(total)) return { source: 'unpriced', reason: 'inconsistent_token_counts' };

  const prompt = usage.promptTokens ?? null;
  const completion = usage.completionTokens ?? null;
  let input: number;
  let output: number;
  if (prompt !== null && completion !== null) {
    if (!isCount(prompt) || !isCount(completion)) return { source: 'unpriced', reason: 'inconsistent_token_counts' };
    input = prompt;
    output = completion + Math.max(0, total - prompt - completion);
  } else if (prompt !== null || completion !== null) {
    const known = (prompt ?? completion)!;
    if (!isCount(known) || known > total) return { source: 'unpriced', reason: 'inconsistent_token_counts' };
    input = prompt ?? total - known;
    output = completion ?? total - known;
  } else {
    if (total === 0) return { source: 'price_table', costUsd: 0, entry: entry.name };
    return { source: 'unpriced', reason: 'no_token_split' };
  }
  const cachedRaw = usage.cachedTokens ?? 0;
  if (!isCount(cachedRaw)) return { source: 'unpriced', reason: 'inconsistent_token_counts' };
  const cached = Math.min(cachedRaw, input);
  const uncached = input - cached;

  let inputRate: number | undefined = entry.input_per_1m;
  let cachedRate: number | undefined = entry.cached_input_per_1m ?? entry.input_per_1m;
  let outputRate: number | undefined = entry.output_per_1m;
  const tier = entry.long_context;
  if (tier && input > tier.above_prompt_tokens) {
    // The whole request pays the tier's rates; a rate the table does not know leaves it unpriced.
    inputRate = tier.input_per_1m;
    cachedRate = tier.cached_input_per_1m;
    outputRate = tier.output_per_1m;
    const missing = (uncached > 0 && inputRate === undefined) || (cached > 0 && cachedRate === undefined) || (output > 0 && outputRate === undefined);
    if (missing) return { source: 'unpriced', reason: 'long_context_rate_unknown' };
  }
  // Rates are USD per 1M tokens, so tokens × rate is the cost in micro-dollars: round that once.
  const micros = uncached * (inputRate ?? 0) + cached * (cachedRate ?? 0) + output * (outputRate ?? 0);
  const costUsd = Math.round(micros) / 1_000_000;
  if (costUsd > MAX_STORED_COST_USD) return { source: 'unpriced', reason: 'cost_above_store_limit' };
  return { source: 'price_table', costUsd, entry: entry.name };
}
