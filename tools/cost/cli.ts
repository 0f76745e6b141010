// `npm run cost -- …`: monthly cost of Lambda (+ each API option) against EC2 for a list of
// traffic levels, and the break-even traffic for each pairing. Logic lives in model.ts; this file
// only parses flags and formats.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  API_TYPES,
  ARCHITECTURES,
  assumptions,
  breakEven,
  CostInputError,
  DEFAULT_PRICES_PATH,
  DEFAULTS,
  ec2Cost,
  FREE_TIERS,
  lambdaCost,
  loadPrices,
  PriceFileError,
  type ApiType,
  type Architecture,
  type BreakEvenResult,
  type Ec2CostResult,
  type Ec2Input,
  type FreeTier,
  type LambdaCostResult,
  type LambdaInput,
  type LineItem,
} from './model.ts';
import { defaultIo, type CliIo } from '../shared/cli-io.ts';


const OPTIONS = {
  'requests-per-day': { type: 'string' },
  'duration-ms': { type: 'string' },
  'memory-mb': { type: 'string' },
  arch: { type: 'string' },
  'free-tier': { type: 'string' },
  api: { type: 'string' },
  'days-per-month': { type: 'string' },
  ec2: { type: 'string' },
  'ec2-count': { type: 'string' },
  'ec2-hours': { type: 'string' },
  'gp3-gb': { type: 'string' },
  'no-ipv4': { type: 'boolean' },
  provisioned: { type: 'string' },
  'provisioned-hours': { type: 'string' },
  'warmer-minutes': { type: 'string' },
  'warmer-ms': { type: 'string' },
  'cold-starts-per-day': { type: 'string' },
  'init-ms': { type: 'string' },
  'log-bytes': { type: 'string' },
  'max-requests-per-day': { type: 'string' },
  prices: { type: 'string' },
  json: { type: 'boolean' },
  breakdown: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const DEFAULT_REQUESTS = '1000,100000,1000000';
const DEFAULT_DURATION_MS = 200;
const DEFAULT_MEMORY_MB = 512;
const DEFAULT_EC2 = 't3.micro';
const DEFAULT_WARMER_MS = 10;
const DEFAULT_INIT_MS = 150;

export const HELP = `Usage: npm run cost -- [options]

Monthly cost of the service on AWS Lambda (with an HTTP API, a REST API or a Function URL in
front) against EC2, for several traffic levels, and the break-even traffic of each pairing.

Traffic and function
  --requests-per-day LIST   comma-separated daily request counts (k/M suffixes and _ allowed,
                            e.g. 1k,100k,1M)                         default ${DEFAULT_REQUESTS}
  --duration-ms N           average billed duration of one invocation; rounded up to the
                            whole ms as Lambda bills                 default ${DEFAULT_DURATION_MS}
  --memory-mb N             function memory, 128-10240               default ${DEFAULT_MEMORY_MB}
  --arch x86_64|arm64       Lambda architecture                      default x86_64
  --days-per-month N        length of the Lambda month, 28-31        default ${DEFAULTS.daysPerMonth}

Front door
  --api http|rest|none|all  API Gateway HTTP API, REST API, none (= Lambda Function URL),
                            or all three side by side                default all

Free tier (applies to both sides)
  --free-tier none|always-free|legacy-12-month
                            none: no allowances. always-free: Lambda 1M requests + 400,000
                            GB-s and 5 GB of logs a month (every account). legacy-12-month:
                            always-free plus API Gateway 1M calls, EC2 750 h of t2/t3.micro,
                            30 GB EBS and 750 h public IPv4 - only accounts opened before
                            2025-07-15, in their first 12 months     default none

Lambda extras
  --provisioned N           provisioned concurrency (environments kept initialised)
  --provisioned-hours N     hours a month it stays configured        default ${DEFAULTS.provisionedHoursPerMonth}
  --warmer-minutes N        keep-warm ping every N minutes (5 → 8,640 a 30-day month)
  --warmer-ms N             billed duration of one warmer ping       default ${DEFAULT_WARMER_MS}
  --cold-starts-per-day N   on-demand cold starts a day; their INIT phase is billed
  --init-ms N               INIT duration of one cold start          default ${DEFAULT_INIT_MS}
  --log-bytes N             CloudWatch Logs bytes ingested per invocation
                                                                     default ${DEFAULTS.logBytesPerInvocation}

EC2 side
  --ec2 TYPE                instance type (one in the price table)   default ${DEFAULT_EC2}
  --ec2-count N             instances, e.g. 2 for availability       default 1
  --ec2-hours N             hours a month they run                   default 730
  --gp3-gb N                gp3 root volume per instance, GB         default ${DEFAULTS.gp3GbPerInstance}
  --no-ipv4                 no public IPv4 address (e.g. behind IPv6 or a tunnel); default
                            is one per instance at $0.005/h

Output and prices
  --prices FILE             JSON overriding parts of tools/cost/prices.json (objects merge,
                            tier lists replace), e.g. {"ec2":{"onDemandHourly":{"t3.micro":0.011}}}
  --max-requests-per-day N  upper end of the break-even search       default ${DEFAULTS.maxRequestsPerDay.toLocaleString('en-US')}
  --breakdown               also print every line item per traffic level
  --json                    machine-readable output
  -h, --help                this text

Example
  npm run cost -- --requests-per-day 1000,100000,1000000 --duration-ms 200 --memory-mb 512
`;

/** A usage error, always naming the flag at fault. */
class UsageError extends Error {}

const FIELD_TO_FLAG: Record<string, string> = {
  requestsPerDay: '--requests-per-day',
  durationMs: '--duration-ms',
  memoryMb: '--memory-mb',
  architecture: '--arch',
  freeTier: '--free-tier',
  apiType: '--api',
  daysPerMonth: '--days-per-month',
  'provisioned.concurrency': '--provisioned',
  'provisioned.hoursPerMonth': '--provisioned-hours',
  'warmer.invocationsPerMonth': '--warmer-minutes',
  'warmer.durationMs': '--warmer-ms',
  'coldStarts.perMonth': '--cold-starts-per-day',
  'coldStarts.initDurationMs': '--init-ms',
  logBytesPerInvocation: '--log-bytes',
  instanceType: '--ec2',
  instances: '--ec2-count',
  gp3GbPerInstance: '--gp3-gb',
  hoursPerMonth: '--ec2-hours',
  maxRequestsPerDay: '--max-requests-per-day',
};

/** Accepts 1000, 1_000, 1e3, 1k, 2.5M. */
function parseNumber(flag: string, raw: string): number {
  const m = /^\s*([0-9_]*\.?[0-9_]+(?:e[+-]?\d+)?)\s*([kKmM]?)\s*$/.exec(raw);
  const n = m ? Number(m[1]!.replace(/_/g, '')) * (m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1e6) : NaN;
  if (!Number.isFinite(n)) throw new UsageError(`${flag}: "${raw}" is not a number`);
  return n;
}

function parseChoice<T extends string>(flag: string, raw: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw)) throw new UsageError(`${flag}: "${raw}" is not one of ${allowed.join(', ')}`);
  return raw as T;
}

type Values = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  } catch (err) {
    const e = err as Error & { code?: string };
    // Node's messages name the option but suggest '--' tricks that do not apply here; keep the name, drop the advice.
    const named = /'(-{1,2}[^' ]+)/.exec(e.message)?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${named ?? e.message}`);
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(`${named ?? 'option'}: ${e.message}`);
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') throw new UsageError(e.message);
    throw new UsageError(e.message);
  }
}

interface Plan {
  requestsPerDay: number[];
  apiTypes: ApiType[];
  lambda: Omit<LambdaInput, 'requestsPerDay' | 'apiType'>;
  ec2: Ec2Input;
  pricesFile: string | undefined;
  maxRequestsPerDay: number;
  json: boolean;
  breakdown: boolean;
}

function buildPlan(v: Values): Plan {
  const opt = (flag: keyof Values): string | undefined => v[flag] as string | undefined;
  const numOpt = (flag: keyof Values, fallback: number): number => {
    const raw = opt(flag);
    return raw === undefined ? fallback : parseNumber(`--${String(flag)}`, raw);
  };

  const rawRequests = opt('requests-per-day') ?? DEFAULT_REQUESTS;
  const requestsPerDay = rawRequests
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => parseNumber('--requests-per-day', s));
  if (requestsPerDay.length === 0) throw new UsageError('--requests-per-day: give at least one value');
  if (requestsPerDay.some((r) => r < 0)) throw new UsageError('--requests-per-day: values must be 0 or more');

  const apiRaw = opt('api') ?? 'all';
  const apiTypes: ApiType[] = apiRaw === 'all' ? ['http', 'rest', 'none'] : [parseChoice('--api', apiRaw, [...API_TYPES, 'all'] as const) as ApiType];
  const architecture: Architecture = parseChoice('--arch', opt('arch') ?? 'x86_64', ARCHITECTURES);
  const freeTier: FreeTier = parseChoice('--free-tier', opt('free-tier') ?? 'none', FREE_TIERS);
  const days = numOpt('days-per-month', DEFAULTS.daysPerMonth);

  const lambda: Plan['lambda'] = {
    durationMs: numOpt('duration-ms', DEFAULT_DURATION_MS),
    memoryMb: numOpt('memory-mb', DEFAULT_MEMORY_MB),
    architecture,
    freeTier,
    daysPerMonth: days,
    logBytesPerInvocation: numOpt('log-bytes', DEFAULTS.logBytesPerInvocation),
  };
  if (opt('provisioned') !== undefined) {
    lambda.provisioned = { concurrency: numOpt('provisioned', 0), hoursPerMonth: numOpt('provisioned-hours', DEFAULTS.provisionedHoursPerMonth) };
  } else if (opt('provisioned-hours') !== undefined) {
    throw new UsageError('--provisioned-hours: only meaningful with --provisioned N');
  }
  if (opt('warmer-minutes') !== undefined) {
    const minutes = numOpt('warmer-minutes', 5);
    if (!(minutes > 0)) throw new UsageError('--warmer-minutes: must be greater than 0');
    lambda.warmer = { invocationsPerMonth: (days * 24 * 60) / minutes, durationMs: numOpt('warmer-ms', DEFAULT_WARMER_MS) };
  } else if (opt('warmer-ms') !== undefined) {
    throw new UsageError('--warmer-ms: only meaningful with --warmer-minutes N');
  }
  if (opt('cold-starts-per-day') !== undefined) {
    lambda.coldStarts = { perMonth: numOpt('cold-starts-per-day', 0) * days, initDurationMs: numOpt('init-ms', DEFAULT_INIT_MS) };
  } else if (opt('init-ms') !== undefined) {
    throw new UsageError('--init-ms: only meaningful with --cold-starts-per-day N');
  }

  const ec2: Ec2Input = {
    instanceType: opt('ec2') ?? DEFAULT_EC2,
    instances: numOpt('ec2-count', DEFAULTS.instances),
    gp3GbPerInstance: numOpt('gp3-gb', DEFAULTS.gp3GbPerInstance),
    publicIpv4PerInstance: v['no-ipv4'] ? 0 : DEFAULTS.publicIpv4PerInstance,
    freeTier,
  };
  if (opt('ec2-hours') !== undefined) ec2.hoursPerMonth = numOpt('ec2-hours', 730);

  return {
    requestsPerDay,
    apiTypes,
    lambda,
    ec2,
    pricesFile: opt('prices'),
    maxRequestsPerDay: numOpt('max-requests-per-day', DEFAULTS.maxRequestsPerDay),
    json: v.json === true,
    breakdown: v.breakdown === true,
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting

const API_NAMES: Record<ApiType, string> = { http: 'Lambda + HTTP API', rest: 'Lambda + REST API', none: 'Lambda + Function URL' };

function money(n: number): string {
  if (n > 0 && n < 0.005) return '<$0.01';
  return `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

function count(n: number): string {
  if (n >= 1e9) return `${trim(n / 1e9)}B`;
  if (n >= 1e6) return `${trim(n / 1e6)}M`;
  return Math.round(n).toLocaleString('en-US');
}

function trim(n: number): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function ec2Name(e: Ec2CostResult, ec2: Ec2Input): string {
  return `EC2 ${e.instances}× ${e.instanceType}${ec2.publicIpv4PerInstance === 0 ? ' (no IPv4)' : ''}`;
}

function describeBreakEven(b: BreakEvenResult): string {
  if (b.status === 'crosses' && b.requestsPerDay !== null) {
    const perSecond = b.requestsPerDay / 86_400;
    return `${Math.round(b.requestsPerDay).toLocaleString('en-US')} requests/day (${count(b.requestsPerMonth ?? 0)}/month, ${trim(perSecond)} req/s average): Lambda is cheaper below, EC2 above`;
  }
  if (b.status === 'ec2-cheaper-throughout') {
    return `never: EC2 (${money(b.ec2MonthlyCost)}) is cheaper even with no traffic (Lambda's fixed cost is ${money(b.lambdaCostAtZero)})`;
  }
  return `never up to ${count(b.maxRequestsPerDay)} requests/day: Lambda is cheaper throughout`;
}

function lineItemRows(items: LineItem[]): string[] {
  return items
    .filter((li) => li.monthlyCost !== 0 || li.key === 'lambdaRequests' || li.key === 'lambdaCompute' || li.key === 'ec2Instance')
    .map((li) => `    ${li.label.padEnd(30)} ${money(li.monthlyCost).padStart(12)}   (${trim(li.quantity)} ${li.unit})`);
}

// ---------------------------------------------------------------------------------------------

export async function runCostCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  try {
    const { values } = parse(argv);
    if (values.help) {
      io.stdout(HELP);
      return 0;
    }
    const plan = buildPlan(values);
    let prices;
    try {
      prices = loadPrices(plan.pricesFile === undefined ? undefined : resolve(plan.pricesFile));
    } catch (err) {
      if (err instanceof PriceFileError) throw new UsageError(`--prices: ${err.message}`);
      throw err;
    }

    const ec2 = ec2Cost(plan.ec2, prices);
    const rows = plan.requestsPerDay.map((requestsPerDay) => ({
      requestsPerDay,
      requestsPerMonth: requestsPerDay * (plan.lambda.daysPerMonth ?? DEFAULTS.daysPerMonth),
      lambda: Object.fromEntries(plan.apiTypes.map((apiType) => [apiType, lambdaCost({ ...plan.lambda, requestsPerDay, apiType }, prices)])) as Partial<
        Record<ApiType, LambdaCostResult>
      >,
      ec2,
    }));
    const breakEvens = plan.apiTypes.map((apiType) =>
      breakEven({ ...plan.lambda, apiType }, plan.ec2, prices, { maxRequestsPerDay: plan.maxRequestsPerDay }),
    );
    const stated = assumptions({ ...plan.lambda, apiType: plan.apiTypes[0]! }, plan.ec2, prices);
    const priceFiles = { file: DEFAULT_PRICES_PATH, override: plan.pricesFile === undefined ? null : resolve(plan.pricesFile) };

    if (plan.json) {
      io.stdout(
        `${JSON.stringify(
          {
            prices: { date: prices.date, region: prices.region, currency: prices.currency, ...priceFiles, sources: prices.sources },
            inputs: { lambda: plan.lambda, apiTypes: plan.apiTypes, ec2: plan.ec2 },
            assumptions: stated,
            rows,
            breakEven: breakEvens,
          },
          null,
          2,
        )}\n`,
      );
      return 0;
    }

    const out: string[] = [];
    const l = plan.lambda;
    out.push(
      `Cost model: ${prices.region} on-demand prices checked ${prices.date} (${priceFiles.override ? `tools/cost/prices.json overridden by ${priceFiles.override}` : 'tools/cost/prices.json'})`,
      `Lambda: ${l.durationMs} ms × ${l.memoryMb} MB ${l.architecture}, free tier: ${l.freeTier}, ${l.daysPerMonth}-day month, ${l.logBytesPerInvocation} B of logs/invocation` +
        (l.provisioned ? `, provisioned concurrency ${l.provisioned.concurrency}` : '') +
        (l.warmer ? `, warmer ${count(l.warmer.invocationsPerMonth)}/month` : '') +
        (l.coldStarts ? `, ${count(l.coldStarts.perMonth)} cold starts/month × ${l.coldStarts.initDurationMs} ms INIT` : ''),
      `EC2: ${ec2.instances} × ${ec2.instanceType}, ${plan.ec2.gp3GbPerInstance} GB gp3 and ${plan.ec2.publicIpv4PerInstance} public IPv4 each, ${plan.ec2.hoursPerMonth ?? prices.ec2.hoursPerMonth} h/month`,
      '',
      'Monthly cost',
    );
    const header = ['requests/day', 'requests/month', ...plan.apiTypes.map((a) => API_NAMES[a]), ec2Name(ec2, plan.ec2)];
    out.push(
      table(
        header,
        rows.map((r) => [
          Math.round(r.requestsPerDay).toLocaleString('en-US'),
          count(r.requestsPerMonth),
          ...plan.apiTypes.map((a) => money(r.lambda[a]!.total)),
          money(r.ec2.total),
        ]),
      ),
    );
    out.push(
      `Lambda columns include the API option, CloudWatch Logs (${l.logBytesPerInvocation} B/invocation) and any extras; --breakdown lists every line item.`,
    );
    if (plan.breakdown) {
      for (const r of rows) {
        out.push('', `Line items at ${Math.round(r.requestsPerDay).toLocaleString('en-US')} requests/day`);
        for (const a of plan.apiTypes) {
          out.push(`  ${API_NAMES[a]}: ${money(r.lambda[a]!.total)}`, ...lineItemRows(r.lambda[a]!.lineItems));
        }
        out.push(`  ${ec2Name(ec2, plan.ec2)}: ${money(ec2.total)}`, ...lineItemRows(ec2.lineItems));
      }
    }
    out.push('', `Break-even against ${ec2Name(ec2, plan.ec2)} (${money(ec2.total)}/month)`);
    const width = Math.max(...plan.apiTypes.map((a) => API_NAMES[a].length));
    for (const b of breakEvens) out.push(`  ${API_NAMES[b.apiType].padEnd(width)}  ${describeBreakEven(b)}`);
    out.push('', 'Assumptions', ...stated.map((s) => `  - ${s}`));
    io.stdout(`${out.join('\n')}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`cost: ${err.message}\nRun with --help for the list of options.\n`);
      return 2;
    }
    if (err instanceof CostInputError) {
      const flag = FIELD_TO_FLAG[err.field] ?? err.field;
      io.stderr(`cost: ${flag}: ${err.message.slice(err.field.length + 2)}\nRun with --help for the list of options.\n`);
      return 2;
    }
    io.stderr(`cost: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

// Run only when executed directly (tsx tools/cost/cli.ts), not when imported by tests.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runCostCli(process.argv.slice(2));
}
