// Monthly cost model: AWS Lambda (+ API Gateway / Function URL, CloudWatch Logs) against EC2.
// Everything here is a pure function of its inputs and a price table; the only I/O is
// loadPrices(), which reads the dated table in prices.json (plus an optional override file).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type Architecture = 'x86_64' | 'arm64';
export type FreeTier = 'none' | 'always-free' | 'legacy-12-month';
export type ApiType = 'http' | 'rest' | 'none';

export const ARCHITECTURES: readonly Architecture[] = ['x86_64', 'arm64'];
export const FREE_TIERS: readonly FreeTier[] = ['none', 'always-free', 'legacy-12-month'];
export const API_TYPES: readonly ApiType[] = ['http', 'rest', 'none'];

/** One price band: units up to `upTo` (cumulative monthly volume, null = no limit) cost `price` each. */
export interface PriceTier {
  upTo: number | null;
  price: number;
}
export interface PerMillionTier {
  upTo: number | null;
  pricePerMillion: number;
}

export interface PriceTable {
  date: string;
  region: string;
  currency: string;
  sources: string[];
  verification?: string[];
  legacyFreeTierCutoff?: string;
  lambda: {
    requestPricePerMillion: number;
    computePerGbSecond: Record<Architecture, PriceTier[]>;
    provisioned: Record<Architecture, { concurrencyPerGbSecond: number; durationPerGbSecond: number }>;
    alwaysFree: { requests: number; gbSeconds: number };
  };
  apiGateway: {
    http: PerMillionTier[];
    rest: PerMillionTier[];
    legacyFreeTierRequests: { http: number; rest: number };
  };
  cloudwatchLogs: {
    /** Tiers in GB (1 GB = 2^30 bytes) of Lambda log ingestion per month. */
    lambdaIngestionPerGb: PriceTier[];
    alwaysFreeGb: number;
  };
  ec2: {
    hoursPerMonth: number;
    onDemandHourly: Record<string, number>;
    gp3PerGbMonth: number;
    publicIpv4PerHour: number;
    legacyFreeTier: {
      instanceHours: number;
      eligibleInstanceTypes: string[];
      ebsGbMonth: number;
      publicIpv4Hours: number;
    };
  };
}

export interface LambdaInput {
  requestsPerDay: number;
  /** Average billed duration of one invocation; rounded up to the next whole ms as Lambda does. */
  durationMs: number;
  memoryMb: number;
  architecture?: Architecture;
  freeTier?: FreeTier;
  /** 'none' = Lambda Function URL (no gateway charge). */
  apiType?: ApiType;
  daysPerMonth?: number;
  provisioned?: { concurrency: number; hoursPerMonth?: number };
  /** Keep-warm schedule, e.g. every 5 minutes = 8,640 invocations in a 30-day month. */
  warmer?: { invocationsPerMonth: number; durationMs: number };
  /** On-demand cold starts; their INIT phase is billed as GB-s since 2025-08-01. */
  coldStarts?: { perMonth: number; initDurationMs: number };
  logBytesPerInvocation?: number;
}

export interface Ec2Input {
  instanceType: string;
  instances?: number;
  gp3GbPerInstance?: number;
  publicIpv4PerInstance?: number;
  hoursPerMonth?: number;
  freeTier?: FreeTier;
}

export type LineItemKey =
  | 'lambdaRequests'
  | 'lambdaCompute'
  | 'provisioned'
  | 'warmer'
  | 'init'
  | 'apiGateway'
  | 'logs'
  | 'ec2Instance'
  | 'ebs'
  | 'ipv4';

export interface LineItem {
  key: LineItemKey;
  label: string;
  quantity: number;
  unit: string;
  monthlyCost: number;
}

export interface LambdaCostResult {
  side: 'lambda';
  apiType: ApiType;
  requestsPerDay: number;
  requestsPerMonth: number;
  billedDurationMs: number;
  gbSecondsPerInvocation: number;
  /** False when provisioned concurrency switches the Lambda free tier off for the function. */
  lambdaFreeTierApplied: boolean;
  lineItems: LineItem[];
  total: number;
}

export interface Ec2CostResult {
  side: 'ec2';
  instanceType: string;
  instances: number;
  lineItems: LineItem[];
  total: number;
}

export type BreakEvenStatus = 'crosses' | 'lambda-cheaper-throughout' | 'ec2-cheaper-throughout';

export interface BreakEvenResult {
  apiType: ApiType;
  status: BreakEvenStatus;
  /** Lambda costs no more than EC2 up to here and more above; null when the lines never cross in range. */
  requestsPerDay: number | null;
  requestsPerMonth: number | null;
  ec2MonthlyCost: number;
  lambdaCostAtZero: number;
  maxRequestsPerDay: number;
}

/** A bad input, named by its field so a CLI can map it back to its flag. */
export class CostInputError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'CostInputError';
    this.field = field;
  }
}

export class PriceFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PriceFileError';
  }
}

export const DEFAULTS = {
  architecture: 'x86_64' as Architecture,
  freeTier: 'none' as FreeTier,
  apiType: 'http' as ApiType,
  daysPerMonth: 30,
  provisionedHoursPerMonth: 730,
  // Why 600: per invocation the Node managed runtime writes START (~70 B), END (~50 B) and
  // REPORT (~140 B, more on cold starts) plus, in this service, one structured JSON line
  // (~250 B: time, level, requestId, route, status, latency). CloudWatch also counts 26 B of
  // overhead per log event (4 events), so ≈ 510 + 104 ≈ 600 bytes.
  logBytesPerInvocation: 600,
  instances: 1,
  gp3GbPerInstance: 8,
  publicIpv4PerInstance: 1,
  maxRequestsPerDay: 1e9,
};

const GIB = 2 ** 30;
const SECONDS_PER_HOUR = 3600;

// ---------------------------------------------------------------------------------------------
// Price table loading

export const DEFAULT_PRICES_PATH = fileURLToPath(new URL('./prices.json', import.meta.url));

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; arrays (tier lists) and scalars are replaced whole, so a tier list is never half old, half new. */
export function mergePrices(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = k in base ? mergePrices(base[k], v) : v;
  return out;
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PriceFileError(`cannot read price file ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new PriceFileError(`price file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The default table, optionally overlaid with a (partial or full) override file. */
export function loadPrices(overridePath?: string): PriceTable {
  let data = readJson(DEFAULT_PRICES_PATH);
  if (overridePath !== undefined) data = mergePrices(data, readJson(overridePath));
  return validatePrices(data, overridePath ?? DEFAULT_PRICES_PATH);
}

/** Checks shape and sanity (non-negative numbers, ascending tiers ending unbounded) so a typo in an override fails loudly. */
export function validatePrices(data: unknown, origin = 'price table'): PriceTable {
  const fail = (path: string, why: string): never => {
    throw new PriceFileError(`${origin}: ${path} ${why}`);
  };
  const get = (path: string): unknown => {
    let cur: unknown = data;
    for (const part of path.split('.')) {
      if (!isPlainObject(cur)) return undefined;
      cur = cur[part];
    }
    return cur;
  };
  const num = (path: string): void => {
    const v = get(path);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(path, 'must be a non-negative number');
  };
  const str = (path: string): void => {
    if (typeof get(path) !== 'string') fail(path, 'must be a string');
  };
  const tiers = (path: string, priceKey: 'price' | 'pricePerMillion'): void => {
    const v = get(path);
    if (!Array.isArray(v) || v.length === 0) return fail(path, 'must be a non-empty list of tiers');
    let last = 0;
    v.forEach((t: unknown, i) => {
      if (!isPlainObject(t)) return fail(`${path}[${i}]`, 'must be an object');
      const p = t[priceKey];
      if (typeof p !== 'number' || !Number.isFinite(p) || p < 0) fail(`${path}[${i}].${priceKey}`, 'must be a non-negative number');
      const upTo = t['upTo'];
      if (i === v.length - 1) {
        if (upTo !== null) fail(`${path}[${i}].upTo`, 'of the last tier must be null (no upper limit)');
      } else if (typeof upTo !== 'number' || !(upTo > last)) {
        fail(`${path}[${i}].upTo`, 'must be a number above the previous tier limit');
      } else last = upTo;
    });
  };
  if (!isPlainObject(data)) fail('(root)', 'must be an object');
  str('date');
  str('region');
  str('currency');
  if (!Array.isArray(get('sources'))) fail('sources', 'must be a list of URLs');
  num('lambda.requestPricePerMillion');
  for (const arch of ARCHITECTURES) {
    tiers(`lambda.computePerGbSecond.${arch}`, 'price');
    num(`lambda.provisioned.${arch}.concurrencyPerGbSecond`);
    num(`lambda.provisioned.${arch}.durationPerGbSecond`);
  }
  num('lambda.alwaysFree.requests');
  num('lambda.alwaysFree.gbSeconds');
  tiers('apiGateway.http', 'pricePerMillion');
  tiers('apiGateway.rest', 'pricePerMillion');
  num('apiGateway.legacyFreeTierRequests.http');
  num('apiGateway.legacyFreeTierRequests.rest');
  tiers('cloudwatchLogs.lambdaIngestionPerGb', 'price');
  num('cloudwatchLogs.alwaysFreeGb');
  num('ec2.hoursPerMonth');
  num('ec2.gp3PerGbMonth');
  num('ec2.publicIpv4PerHour');
  const hourly = get('ec2.onDemandHourly');
  if (!isPlainObject(hourly)) fail('ec2.onDemandHourly', 'must be an object of instance type → $/hour');
  else {
    // Instance names contain dots, so they are checked here rather than through get().
    for (const [k, v] of Object.entries(hourly)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`ec2.onDemandHourly["${k}"]`, 'must be a non-negative number');
    }
  }
  num('ec2.legacyFreeTier.instanceHours');
  num('ec2.legacyFreeTier.ebsGbMonth');
  num('ec2.legacyFreeTier.publicIpv4Hours');
  if (!Array.isArray(get('ec2.legacyFreeTier.eligibleInstanceTypes'))) {
    fail('ec2.legacyFreeTier.eligibleInstanceTypes', 'must be a list of instance types');
  }
  return data as PriceTable;
}

// ---------------------------------------------------------------------------------------------
// Pricing primitives

/**
 * Marginal (graduated) pricing of a monthly volume: each unit costs the price of the band it
 * falls in. Free units are taken off the bottom of the volume, so the band boundaries stay on
 * gross monthly usage (the free allowance counts toward reaching a cheaper band).
 */
export function tieredCost(quantity: number, tiers: readonly PriceTier[], freeUnits = 0): number {
  let cost = 0;
  let lower = 0;
  for (const tier of tiers) {
    const upper = tier.upTo ?? Infinity;
    const from = Math.max(lower, freeUnits);
    const to = Math.min(upper, quantity);
    if (to > from) cost += (to - from) * tier.price;
    if (upper >= quantity) break;
    lower = upper;
  }
  return cost;
}

/** API Gateway bands are quoted per million requests; pricing in millions keeps the sums exact-ish in floating point. */
function perMillionTiers(tiers: readonly PerMillionTier[]): PriceTier[] {
  return tiers.map((t) => ({ upTo: t.upTo === null ? null : t.upTo / 1e6, price: t.pricePerMillion }));
}

/** Lambda bills whole milliseconds, rounded up (1 ms minimum); the epsilon keeps 200.0000000001 from becoming 201. */
export function billedMilliseconds(ms: number): number {
  return Math.max(1, Math.ceil(ms - 1e-9));
}

// ---------------------------------------------------------------------------------------------
// Input validation

function check(field: string, value: unknown, opts: { min?: number; max?: number; integer?: boolean; positive?: boolean } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new CostInputError(field, `must be a finite number (got ${String(value)})`);
  if (opts.positive && !(value > 0)) throw new CostInputError(field, `must be greater than 0 (got ${value})`);
  if (opts.min !== undefined && value < opts.min) throw new CostInputError(field, `must be at least ${opts.min} (got ${value})`);
  if (opts.max !== undefined && value > opts.max) throw new CostInputError(field, `must be at most ${opts.max} (got ${value})`);
  if (opts.integer && !Number.isInteger(value)) throw new CostInputError(field, `must be a whole number (got ${value})`);
  return value;
}

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new CostInputError(field, `must be one of ${allowed.join(', ')} (got ${String(value)})`);
  }
  return value as T;
}

// ---------------------------------------------------------------------------------------------
// Lambda

/** Everything about a Lambda setup that does not depend on traffic, precomputed once. */
interface LambdaPlan {
  apiType: ApiType;
  days: number;
  memoryGb: number;
  billedMs: number;
  gbsPerInvocation: number;
  computeTiers: PriceTier[];
  requestPrice: number; // per request
  lambdaFree: boolean;
  freeRequests: number;
  freeGbs: number;
  warmerInvocations: number;
  warmerGbs: number;
  coldStarts: number;
  initGbs: number;
  pcCount: number;
  pcHours: number;
  pcWindowFraction: number; // share of the month's traffic that arrives while provisioned
  pcCapacityGbs: number; // GB-s the provisioned environments can serve in that window
  pcConcurrencyCost: number;
  pcDurationPrice: number;
  apiTiers: PriceTier[]; // per million
  apiFreeMillions: number;
  logBytes: number;
  logTiers: PriceTier[];
  logFreeGb: number;
}

function planLambda(input: Omit<LambdaInput, 'requestsPerDay'>, prices: PriceTable): LambdaPlan {
  const arch = oneOf('architecture', input.architecture ?? DEFAULTS.architecture, ARCHITECTURES);
  const freeTier = oneOf('freeTier', input.freeTier ?? DEFAULTS.freeTier, FREE_TIERS);
  const apiType = oneOf('apiType', input.apiType ?? DEFAULTS.apiType, API_TYPES);
  const days = check('daysPerMonth', input.daysPerMonth ?? DEFAULTS.daysPerMonth, { min: 28, max: 31 });
  const durationMs = check('durationMs', input.durationMs, { positive: true, max: 900_000 });
  const memoryMb = check('memoryMb', input.memoryMb, { min: 128, max: 10_240, integer: true });
  const logBytes = check('logBytesPerInvocation', input.logBytesPerInvocation ?? DEFAULTS.logBytesPerInvocation, { min: 0 });

  const memoryGb = memoryMb / 1024;
  const billedMs = billedMilliseconds(durationMs);
  const monthHours = days * 24;

  const pcCount = check('provisioned.concurrency', input.provisioned?.concurrency ?? 0, { min: 0, integer: true });
  const pcHours = check('provisioned.hoursPerMonth', input.provisioned?.hoursPerMonth ?? DEFAULTS.provisionedHoursPerMonth, { min: 0, max: 744 });
  const pcWindowHours = pcCount > 0 ? Math.min(pcHours, monthHours) : 0;
  const pcPrices = prices.lambda.provisioned[arch];

  let warmerInvocations = 0;
  let warmerGbs = 0;
  if (input.warmer) {
    warmerInvocations = check('warmer.invocationsPerMonth', input.warmer.invocationsPerMonth, { min: 0 });
    const ms = check('warmer.durationMs', input.warmer.durationMs, { positive: true, max: 900_000 });
    warmerGbs = warmerInvocations * memoryGb * (billedMilliseconds(ms) / 1000);
  }
  let coldStarts = 0;
  let initGbs = 0;
  if (input.coldStarts) {
    coldStarts = check('coldStarts.perMonth', input.coldStarts.perMonth, { min: 0 });
    const ms = check('coldStarts.initDurationMs', input.coldStarts.initDurationMs, { positive: true, max: 10_000 });
    initGbs = coldStarts * memoryGb * (billedMilliseconds(ms) / 1000);
  }

  // AWS: "The Lambda free tier does not apply to functions that have Provisioned Concurrency enabled."
  const lambdaFree = freeTier !== 'none' && pcCount === 0;
  const legacy = freeTier === 'legacy-12-month';
  const apiTiers = apiType === 'none' ? [] : perMillionTiers(prices.apiGateway[apiType]);
  const apiFree = legacy && apiType !== 'none' ? prices.apiGateway.legacyFreeTierRequests[apiType] : 0;

  return {
    apiType,
    days,
    memoryGb,
    billedMs,
    gbsPerInvocation: memoryGb * (billedMs / 1000),
    computeTiers: prices.lambda.computePerGbSecond[arch],
    requestPrice: prices.lambda.requestPricePerMillion / 1e6,
    lambdaFree,
    freeRequests: lambdaFree ? prices.lambda.alwaysFree.requests : 0,
    freeGbs: lambdaFree ? prices.lambda.alwaysFree.gbSeconds : 0,
    warmerInvocations,
    warmerGbs,
    coldStarts,
    initGbs,
    pcCount,
    pcHours,
    pcWindowFraction: pcWindowHours / monthHours,
    pcCapacityGbs: pcCount * memoryGb * pcWindowHours * SECONDS_PER_HOUR,
    // Billed for every configured hour, used or not.
    pcConcurrencyCost: pcCount * memoryGb * pcHours * SECONDS_PER_HOUR * pcPrices.concurrencyPerGbSecond,
    pcDurationPrice: pcPrices.durationPerGbSecond,
    apiTiers,
    apiFreeMillions: apiFree / 1e6,
    logBytes,
    logTiers: prices.cloudwatchLogs.lambdaIngestionPerGb,
    logFreeGb: freeTier !== 'none' ? prices.cloudwatchLogs.alwaysFreeGb : 0,
  };
}

/**
 * Invocations arriving while provisioned concurrency is configured run on those environments
 * (cheaper duration rate) until their GB-s capacity is used up; the rest spill over to on-demand.
 * This assumes steady traffic: bursts above the configured concurrency spill over earlier.
 */
function provisionedServedGbs(plan: LambdaPlan, mainGbs: number): number {
  if (plan.pcCount === 0) return 0;
  return Math.min(plan.pcWindowFraction * mainGbs, plan.pcCapacityGbs);
}

function evaluateLambda(plan: LambdaPlan, requestsPerDay: number): LambdaCostResult {
  const requests = requestsPerDay * plan.days;
  const mainGbs = requests * plan.gbsPerInvocation;
  const pcGbs = provisionedServedGbs(plan, mainGbs);
  const onDemandGbs = mainGbs - pcGbs;

  const requestCost = (n: number): number => Math.max(0, n - plan.freeRequests) * plan.requestPrice;
  const computeCost = (gbs: number): number => tieredCost(gbs, plan.computeTiers, plan.freeGbs);

  // Shared pools (free allowance, tiers) are charged to line items in order: traffic first,
  // then the warmer, then INIT, each item getting the extra cost it adds. The items sum to the
  // pooled total exactly, and "what does the warmer cost me" reads off its own line.
  const trafficRequests = requestCost(requests);
  const trafficCompute = computeCost(onDemandGbs);
  const warmerCost =
    requestCost(requests + plan.warmerInvocations) - trafficRequests +
    (computeCost(onDemandGbs + plan.warmerGbs) - trafficCompute);
  const initCost = computeCost(onDemandGbs + plan.warmerGbs + plan.initGbs) - computeCost(onDemandGbs + plan.warmerGbs);
  const provisionedCost = plan.pcConcurrencyCost + pcGbs * plan.pcDurationPrice;
  const apiCost = plan.apiType === 'none' ? 0 : tieredCost(requests / 1e6, plan.apiTiers, plan.apiFreeMillions);
  const logGb = ((requests + plan.warmerInvocations) * plan.logBytes) / GIB;
  const logCost = tieredCost(logGb, plan.logTiers, plan.logFreeGb);

  const apiLabel = { http: 'API Gateway HTTP API', rest: 'API Gateway REST API', none: 'Function URL (no charge)' }[plan.apiType];
  const lineItems: LineItem[] = [
    { key: 'lambdaRequests', label: 'Lambda requests', quantity: requests, unit: 'requests', monthlyCost: trafficRequests },
    { key: 'lambdaCompute', label: 'Lambda compute (on-demand)', quantity: onDemandGbs, unit: 'GB-s', monthlyCost: trafficCompute },
    {
      key: 'provisioned',
      label: 'Provisioned concurrency',
      quantity: plan.pcCount * plan.memoryGb * plan.pcHours * SECONDS_PER_HOUR,
      unit: 'GB-s configured',
      monthlyCost: provisionedCost,
    },
    { key: 'warmer', label: 'Warmer invocations', quantity: plan.warmerInvocations, unit: 'invocations', monthlyCost: warmerCost },
    { key: 'init', label: 'INIT (cold starts)', quantity: plan.initGbs, unit: 'GB-s', monthlyCost: initCost },
    { key: 'apiGateway', label: apiLabel, quantity: plan.apiType === 'none' ? 0 : requests, unit: 'requests', monthlyCost: apiCost },
    { key: 'logs', label: 'CloudWatch Logs ingestion', quantity: logGb, unit: 'GB', monthlyCost: logCost },
  ];
  return {
    side: 'lambda',
    apiType: plan.apiType,
    requestsPerDay,
    requestsPerMonth: requests,
    billedDurationMs: plan.billedMs,
    gbSecondsPerInvocation: plan.gbsPerInvocation,
    lambdaFreeTierApplied: plan.lambdaFree,
    lineItems,
    total: lineItems.reduce((s, li) => s + li.monthlyCost, 0),
  };
}

export function lambdaCost(input: LambdaInput, prices: PriceTable): LambdaCostResult {
  const requestsPerDay = check('requestsPerDay', input.requestsPerDay, { min: 0 });
  return evaluateLambda(planLambda(input, prices), requestsPerDay);
}

// ---------------------------------------------------------------------------------------------
// EC2

export function ec2Cost(input: Ec2Input, prices: PriceTable): Ec2CostResult {
  const type = input.instanceType;
  const hourly = prices.ec2.onDemandHourly[type];
  if (hourly === undefined) {
    throw new CostInputError(
      'instanceType',
      `no price for "${type}" in the price table (known: ${Object.keys(prices.ec2.onDemandHourly).join(', ')}); add it with a price override file`,
    );
  }
  const instances = check('instances', input.instances ?? DEFAULTS.instances, { min: 1, integer: true });
  const gb = check('gp3GbPerInstance', input.gp3GbPerInstance ?? DEFAULTS.gp3GbPerInstance, { min: 0 });
  const ipv4 = check('publicIpv4PerInstance', input.publicIpv4PerInstance ?? DEFAULTS.publicIpv4PerInstance, { min: 0, integer: true });
  const hours = check('hoursPerMonth', input.hoursPerMonth ?? prices.ec2.hoursPerMonth, { positive: true, max: 744 });
  const freeTier = oneOf('freeTier', input.freeTier ?? DEFAULTS.freeTier, FREE_TIERS);
  const free = prices.ec2.legacyFreeTier;
  // Only the pre-2025-07-15 12-month tier covers EC2; its allowances are per account and
  // shared by all instances, hence subtracted from the fleet's totals.
  const legacy = freeTier === 'legacy-12-month';

  const instanceHours = instances * hours;
  const freeHours = legacy && free.eligibleInstanceTypes.includes(type) ? free.instanceHours : 0;
  // EBS is priced per GB-month; a setup that exists for part of the month pays pro rata.
  const gbMonths = (instances * gb * hours) / prices.ec2.hoursPerMonth;
  const ipv4Hours = instances * ipv4 * hours;

  const lineItems: LineItem[] = [
    {
      key: 'ec2Instance',
      label: `EC2 ${instances} × ${type} on-demand`,
      quantity: instanceHours,
      unit: 'instance-hours',
      monthlyCost: Math.max(0, instanceHours - freeHours) * hourly,
    },
    {
      key: 'ebs',
      label: 'EBS gp3',
      quantity: gbMonths,
      unit: 'GB-months',
      monthlyCost: Math.max(0, gbMonths - (legacy ? free.ebsGbMonth : 0)) * prices.ec2.gp3PerGbMonth,
    },
    {
      key: 'ipv4',
      label: 'Public IPv4',
      quantity: ipv4Hours,
      unit: 'address-hours',
      monthlyCost: Math.max(0, ipv4Hours - (legacy ? free.publicIpv4Hours : 0)) * prices.ec2.publicIpv4PerHour,
    },
  ];
  return { side: 'ec2', instanceType: type, instances, lineItems, total: lineItems.reduce((s, li) => s + li.monthlyCost, 0) };
}

// ---------------------------------------------------------------------------------------------
// Break-even

/** r where a·r + b reaches each threshold, kept if inside (lo, hi). */
function crossings(a: number, b: number, thresholds: readonly number[], lo: number, hi: number): number[] {
  if (!(a > 0)) return [];
  return thresholds.map((t) => (t - b) / a).filter((r) => r > lo && r < hi);
}

function tierBounds(tiers: readonly PriceTier[]): number[] {
  return tiers.flatMap((t) => (t.upTo === null ? [] : [t.upTo]));
}

/**
 * Every requests/day value where the Lambda total's slope can change. Each cost component is a
 * piecewise-linear function of a monthly quantity that is itself affine in requests/day (or two
 * affine pieces, when provisioned concurrency fills up), so its kinks are where that quantity
 * crosses a free allowance or a tier boundary.
 */
function lambdaKinks(plan: LambdaPlan, maxR: number): number[] {
  const d = plan.days;
  const kinks: number[] = [];
  // Lambda requests: d·r + warmer, kink at the free allowance.
  kinks.push(...crossings(d, plan.warmerInvocations, [plan.freeRequests], 0, maxR));
  // On-demand GB-s: d·g·r·(1 − f) + fixed until provisioned capacity is full at rPc, then d·g·r − capacity + fixed.
  const fixed = plan.warmerGbs + plan.initGbs;
  const gbsThresholds = [plan.freeGbs, ...tierBounds(plan.computeTiers)];
  const slope = d * plan.gbsPerInvocation;
  let rPc = maxR;
  if (plan.pcCount > 0 && plan.pcWindowFraction > 0 && slope > 0) {
    rPc = plan.pcCapacityGbs / (plan.pcWindowFraction * slope);
    if (rPc > 0 && rPc < maxR) kinks.push(rPc);
  }
  kinks.push(...crossings(slope * (1 - plan.pcWindowFraction), fixed, gbsThresholds, 0, Math.min(rPc, maxR)));
  if (rPc < maxR) kinks.push(...crossings(slope, fixed - plan.pcCapacityGbs, gbsThresholds, rPc, maxR));
  // API Gateway: millions of requests d·r/1e6.
  if (plan.apiType !== 'none') kinks.push(...crossings(d / 1e6, 0, [plan.apiFreeMillions, ...tierBounds(plan.apiTiers)], 0, maxR));
  // Logs: GB of (d·r + warmer)·bytes.
  const perInvocationGb = plan.logBytes / GIB;
  kinks.push(...crossings(d * perInvocationGb, plan.warmerInvocations * perInvocationGb, [plan.logFreeGb, ...tierBounds(plan.logTiers)], 0, maxR));
  return kinks;
}

/**
 * Requests/day at which Lambda (with the given API option) costs the same as the EC2 setup.
 * Lambda's monthly cost is continuous, non-decreasing and piecewise linear in requests/day while
 * EC2's is flat, so {r : Lambda(r) ≤ EC2} is an interval [0, r*]. r* is found exactly: evaluate
 * at every kink, take the first segment that ends above EC2, and solve its line.
 */
export function breakEven(
  lambda: Omit<LambdaInput, 'requestsPerDay'>,
  ec2: Ec2Input,
  prices: PriceTable,
  opts: { maxRequestsPerDay?: number } = {},
): BreakEvenResult {
  const maxR = check('maxRequestsPerDay', opts.maxRequestsPerDay ?? DEFAULTS.maxRequestsPerDay, { positive: true });
  const plan = planLambda(lambda, prices);
  const ec2Total = ec2Cost(ec2, prices).total;
  const f = (r: number): number => evaluateLambda(plan, r).total - ec2Total;
  // A cent's billionth: absorbs floating-point noise when both sides are exactly equal (e.g. both free).
  const eps = 1e-9;
  const base = { apiType: plan.apiType, ec2MonthlyCost: ec2Total, lambdaCostAtZero: f(0) + ec2Total, maxRequestsPerDay: maxR };

  if (f(0) > eps) return { ...base, status: 'ec2-cheaper-throughout', requestsPerDay: null, requestsPerMonth: null };
  if (f(maxR) <= eps) return { ...base, status: 'lambda-cheaper-throughout', requestsPerDay: null, requestsPerMonth: null };

  const points = [...new Set([0, ...lambdaKinks(plan, maxR), maxR])].sort((a, b) => a - b);
  const values = points.map(f);
  const j = values.findIndex((v) => v > eps);
  const lo = points[j - 1]!;
  const hi = points[j]!;
  const fLo = values[j - 1]!;
  const fHi = values[j]!;
  let r = lo + (-fLo * (hi - lo)) / (fHi - fLo);
  // Guard against a kink the enumeration missed: if the segment is not a straight line, bisect.
  const mid = (lo + hi) / 2;
  if (Math.abs(f(mid) - (fLo + fHi) / 2) > 1e-6 * Math.max(1, Math.abs(fHi))) r = bisect(f, lo, hi);
  return { ...base, status: 'crosses', requestsPerDay: r, requestsPerMonth: r * plan.days };
}

function bisect(f: (r: number) => number, lo: number, hi: number): number {
  for (let i = 0; i < 200 && hi - lo > 1e-9 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) > 0) hi = mid;
    else lo = mid;
  }
  return (lo + hi) / 2;
}

// ---------------------------------------------------------------------------------------------
// Assumptions, stated with every result so a reader can judge it

export function assumptions(lambda: Omit<LambdaInput, 'requestsPerDay'>, ec2: Ec2Input, prices: PriceTable): string[] {
  const plan = planLambda(lambda, prices);
  const freeTier = lambda.freeTier ?? DEFAULTS.freeTier;
  const out = [
    `Prices: ${prices.region}, on-demand list prices in ${prices.currency} as checked on ${prices.date}; no Savings Plans, reserved instances or credits.`,
    `Lambda month = ${plan.days} days; EC2 month = ${ec2.hoursPerMonth ?? prices.ec2.hoursPerMonth} hours. Traffic is spread evenly over the month.`,
    `Each invocation is billed ${plan.billedMs} ms (average duration rounded up to the ms) at ${lambda.memoryMb} MB = ${round(plan.gbsPerInvocation, 6)} GB-s.`,
    `GB-s and request tiers are applied to this function's monthly volume alone; other functions in the account would reach cheaper tiers sooner.`,
    `CloudWatch Logs: ${plan.logBytes} bytes ingested per invocation (START/END/REPORT lines + one JSON line); storage after ingestion (retention) is not counted.`,
    'Data transfer out, DNS, TLS certificates and the database are left out: they cost about the same on both sides.',
    'EC2 keeps its logs on the instance; shipping them to CloudWatch would add a logs line there too.',
    `EC2 cost does not grow with traffic: the instance type must be big enough for the peak load, which this model does not check.`,
    'T-family instances are assumed to stay within their CPU credit baseline (no unlimited-mode surplus charges).',
  ];
  if (freeTier === 'none') out.push('Free tier: none (an account past its free allowances).');
  if (freeTier === 'always-free') {
    out.push(`Free tier: always-free only (Lambda 1M requests + 400,000 GB-s, CloudWatch 5 GB of logs a month), which every account keeps.`);
  }
  if (freeTier === 'legacy-12-month') {
    out.push(
      `Free tier: always-free plus the legacy 12-month tier (API Gateway 1M calls, EC2 750 h of ${prices.ec2.legacyFreeTier.eligibleInstanceTypes.join('/')}, 30 GB EBS, 750 h public IPv4), which only accounts opened before ${prices.legacyFreeTierCutoff ?? '2025-07-15'} get, for their first 12 months.`,
    );
  }
  if (plan.pcCount > 0) {
    out.push(
      `Provisioned concurrency ${plan.pcCount} for ${plan.pcHours} h/month; invocations are served by it up to its capacity (steady traffic), the rest on-demand. The Lambda free tier does not apply to a function with provisioned concurrency.`,
    );
  }
  if (plan.warmerInvocations > 0) out.push(`Warmer: ${round(plan.warmerInvocations, 0).toLocaleString('en-US')} invocations a month, invoked directly (no API Gateway charge).`);
  if (plan.coldStarts > 0) out.push(`INIT billed for ${round(plan.coldStarts, 0).toLocaleString('en-US')} on-demand cold starts a month (billed since 2025-08-01).`);
  else out.push('No INIT duration counted (set cold starts to include it; usually < 1% of invocations).');
  return out;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
