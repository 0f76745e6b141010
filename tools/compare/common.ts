// Pieces shared by `compare:local` and `compare`: the cost flags (defaulting to what the CDK
// stacks deploy, so the report prices the setup a team would actually run) and the final summary.
import { DEFAULTS as INFRA } from '../../infra/config.ts';
import { ARCHITECTURES, FREE_TIERS, loadPrices, type Architecture, type FreeTier, type PriceTable } from '../cost/model.ts';
import { parseCount, UsageError } from '../bench/args.ts';
import type { CostSettings, CompareReport } from './report.ts';
import type { WrittenReport } from './render.ts';
import { defaultIo, type CliIo } from '../shared/cli-io.ts';

export { defaultIo, type CliIo } from '../shared/cli-io.ts';

export const COST_OPTIONS = {
  'memory-mb': { type: 'string' },
  arch: { type: 'string' },
  ec2: { type: 'string' },
  'free-tier': { type: 'string' },
  'no-warmer': { type: 'boolean' },
} as const;

export const COST_HELP = `Cost model (defaults: what the CDK stacks in infra/ deploy)
  --memory-mb N           Lambda memory; also the emulator's limit   default ${INFRA.lambda.memoryMb}
  --arch x86_64|arm64     Lambda architecture priced                 default ${INFRA.lambda.architecture}
  --ec2 TYPE              instance type of the server side           default ${INFRA.server.instanceType}
  --free-tier none|always-free|legacy-12-month                       default none
  --no-warmer             leave out the stack's keep-warm ping (every ${INFRA.lambda.warmer.rateMinutes} min)`;

/** The cost settings of the CDK stacks' defaults. */
export const STACK_COST_SETTINGS: CostSettings = {
  memoryMb: INFRA.lambda.memoryMb,
  architecture: INFRA.lambda.architecture,
  freeTier: 'none',
  ec2Type: INFRA.server.instanceType,
  gp3Gb: INFRA.server.volumeGb,
  warmerEveryMinutes: INFRA.lambda.warmer.enabled ? INFRA.lambda.warmer.rateMinutes : null,
};

/** Flags over `base` (the stacks' defaults, or a saved report's settings when re-pricing it). */
export function parseCostSettings(
  values: { 'memory-mb'?: string; arch?: string; ec2?: string; 'free-tier'?: string; 'no-warmer'?: boolean },
  prices: PriceTable,
  base: CostSettings = STACK_COST_SETTINGS,
): CostSettings {
  const arch = (values.arch ?? base.architecture) as Architecture;
  if (!ARCHITECTURES.includes(arch)) throw new UsageError(`--arch must be one of ${ARCHITECTURES.join(', ')}, got "${values.arch}"`);
  const freeTier = (values['free-tier'] ?? base.freeTier) as FreeTier;
  if (!FREE_TIERS.includes(freeTier)) throw new UsageError(`--free-tier must be one of ${FREE_TIERS.join(', ')}, got "${values['free-tier']}"`);
  const ec2Type = values.ec2 ?? base.ec2Type;
  if (prices.ec2.onDemandHourly[ec2Type] === undefined) {
    throw new UsageError(`--ec2: no price for "${ec2Type}" in tools/cost/prices.json (known: ${Object.keys(prices.ec2.onDemandHourly).join(', ')})`);
  }
  return {
    memoryMb: parseCount('--memory-mb', values['memory-mb'], base.memoryMb, 128, 10_240),
    architecture: arch,
    freeTier,
    ec2Type,
    gp3Gb: base.gp3Gb,
    warmerEveryMinutes: values['no-warmer'] ? null : base.warmerEveryMinutes,
  };
}

export { loadPrices };

export function printSummary(io: CliIo, report: CompareReport, written: WrittenReport, elapsedMs: number): void {
  const out = [
    '',
    `Report written in ${(elapsedMs / 1000).toFixed(0)} s:`,
    `  ${written.html}`,
    `  ${written.md}`,
    `  ${written.json}`,
  ];
  if (written.chartsMissing.length) {
    out.push(`  (charts not drawn: ${written.chartsMissing.join(' and ')} missing; the tables hold every figure)`);
  }
  out.push('', 'Verdict', ...report.verdict.map((p) => wrap(p, 100, '  ')), '');
  io.stdout(`${out.join('\n')}\n`);
}

export function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width - indent.length) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return `${lines.join('\n')}\n`;
}
