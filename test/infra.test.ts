/**
 * Infrastructure tests: the CDK stacks synthesized in-process with aws-cdk-lib/assertions, the
 * config loader, the server's boot script (bash -n, node --check, systemd-analyze verify, the
 * secret fetcher run against a fake `aws`), the npm script wrappers, and one real `cdk synth`
 * through `npm run synth`'s script with no credentials, no network and a throwaway HOME.
 *
 * Run: node --import tsx --test --test-reporter=spec test/infra.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { ConfigError, DEFAULTS, loadConfig, serverArchitecture, stackNames } from '../infra/config.ts';
import { MlopsLambdaStack, WARMER_EVENT } from '../infra/lib/lambda-stack.ts';
import { MlopsServerStack, SERVER_PATHS } from '../infra/lib/server-stack.ts';
import { skipOrFail } from './helpers/skip.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// The same feature flags the CLI applies from infra/cdk.json.
const CDK_CONTEXT = (JSON.parse(readFileSync(join(ROOT, 'infra', 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;

const TMP = mkdtempSync(join(tmpdir(), 'mlops-infra-test-'));
const LAMBDA_DIR = join(TMP, 'lambda');
const LAMBDA_DIR_2 = join(TMP, 'lambda-v2');
const SERVER_DIR = join(TMP, 'server');
const SERVER_DIR_2 = join(TMP, 'server-v2');
for (const d of [LAMBDA_DIR, LAMBDA_DIR_2, SERVER_DIR, SERVER_DIR_2]) mkdirSync(d);
writeFileSync(join(LAMBDA_DIR, 'index.mjs'), 'export const handler = async () => ({ statusCode: 200 });\nexport const migrate = async () => ({ PhysicalResourceId: "m" });\n');
writeFileSync(join(LAMBDA_DIR_2, 'index.mjs'), 'export const handler = async () => ({ statusCode: 201 });\nexport const migrate = async () => ({ PhysicalResourceId: "m" });\n');
writeFileSync(join(SERVER_DIR, 'server.mjs'), 'console.log("placeholder v1");\n');
writeFileSync(join(SERVER_DIR_2, 'server.mjs'), 'console.log("placeholder v2");\n');

const BASE_CONTEXT = { 'lambda.codeDir': LAMBDA_DIR, 'server.codeDir': SERVER_DIR };

function config(ctx: Record<string, unknown> = {}) {
  return loadConfig({ context: { ...BASE_CONTEXT, ...ctx }, configFile: false }).config;
}

// CDK's built-in CloudFormation validation (a WASM rule engine; with the cdk.json flags a finding
// fails synthesis) costs seconds per synth, so it runs once over every variant together (see
// 'CloudFormation validation') and in the CLI synth, and is skipped in the per-variant synths.
function newApp(validate: boolean): App {
  // outdir under TMP so the assemblies are cleaned up with it.
  return new App({ context: CDK_CONTEXT, analyticsReporting: false, builtinCloudFormationValidation: validate, outdir: mkdtempSync(join(TMP, 'out-')) });
}

function lambdaStack(ctx: Record<string, unknown> = {}): { t: Template; stack: MlopsLambdaStack } {
  const app = newApp(false);
  const stack = new MlopsLambdaStack(app, 'MlopsLambdaStack', { config: config(ctx) });
  return { t: Template.fromStack(stack), stack };
}

function serverStack(ctx: Record<string, unknown> = {}): { t: Template; stack: MlopsServerStack } {
  const app = newApp(false);
  const stack = new MlopsServerStack(app, 'MlopsServerStack', { config: config(ctx) });
  return { t: Template.fromStack(stack), stack };
}

type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: string[]; DeletionPolicy?: string };

function resources(t: Template, type: string): Array<[string, Resource]> {
  return Object.entries(t.findResources(type)) as Array<[string, Resource]>;
}

function only(t: Template, type: string): [string, Resource] {
  const list = resources(t, type);
  assert.equal(list.length, 1, `expected one ${type}, found ${list.length}`);
  return list[0] as [string, Resource];
}

/** The API function (handler index.handler). */
function apiFunction(t: Template): [string, Resource] {
  const list = resources(t, 'AWS::Lambda::Function').filter(([, r]) => r.Properties.Handler === 'index.handler');
  assert.equal(list.length, 1);
  return list[0] as [string, Resource];
}

function userData(t: Template): string {
  const [, inst] = only(t, 'AWS::EC2::Instance');
  const parts = inst.Properties.UserData['Fn::Base64']['Fn::Join'][1] as unknown[];
  return parts.map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('');
}

function heredocs(script: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of script.matchAll(/cat > (\S+) <<'MLOPS_EOF'\n([\s\S]*?)\nMLOPS_EOF/g)) out.set(m[1] as string, m[2] as string);
  return out;
}

/** Env with no AWS credentials and a throwaway HOME, for the CLI runs. */
function noAwsEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, USERPROFILE: home };
  for (const k of Object.keys(env)) if (k.startsWith('AWS_')) delete env[k];
  Object.assign(env, {
    AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '', AWS_PROFILE: '',
    AWS_EC2_METADATA_DISABLED: 'true', CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true',
    npm_config_update_notifier: 'false', NO_COLOR: '1',
  });
  return env;
}

const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

function runScript(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [TSX, join(ROOT, 'scripts', script), ...args], { cwd: ROOT, env });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => done({ code: code ?? 1, out }));
  });
}

// The real CLI synth takes 6–17 s: start it now so it runs alongside the in-process tests.
const CLI_HOME = join(TMP, 'home');
const CLI_OUT = join(TMP, 'cdk.out');
mkdirSync(CLI_HOME);
const cliSynth = runScript('synth.ts', ['-c', `lambda.codeDir=${LAMBDA_DIR}`, '-c', `server.codeDir=${SERVER_DIR}`, '-c', 'configFile=infra/config.example.json', '-c', 'lambda.provisionedConcurrency=1', '-o', CLI_OUT], noAwsEnv(CLI_HOME));

after(() => rmSync(TMP, { recursive: true, force: true }));

describe('config', () => {
  test('defaults', () => {
    const c = config();
    assert.equal(c.lambda.architecture, 'arm64');
    assert.equal(c.lambda.memoryMb, 512);
    assert.equal(c.lambda.timeoutSec, 30);
    assert.equal(c.lambda.runtime, 'nodejs22.x');
    assert.equal(c.lambda.warmer.enabled, true);
    assert.equal(c.lambda.warmer.rateMinutes, 5);
    assert.equal(c.lambda.database.migrateOnDeploy, false, 'no database → no migrations');
    assert.equal(c.server.instanceType, 't3.micro');
    assert.equal(c.server.port, 5001);
    assert.equal(c.server.sshCidr, undefined);
    assert.deepEqual(stackNames(c), { lambda: 'MlopsLambdaStack', server: 'MlopsServerStack' });
    assert.equal(config({ 'lambda.database.secretId': 'db' }).lambda.database.migrateOnDeploy, true, 'database → migrations by default');
  });

  test('context strings are coerced to the setting types; maps merge into the defaults', () => {
    const c = config({
      'lambda.memoryMb': '1024', 'lambda.warmer.enabled': 'false', 'lambda.reservedConcurrency': '7',
      'lambda.environment.CORS_ORIGINS': 'https://chat.example.com', stackPrefix: 'Dev',
    });
    assert.equal(c.lambda.memoryMb, 1024);
    assert.equal(c.lambda.warmer.enabled, false);
    assert.equal(c.lambda.reservedConcurrency, 7);
    assert.deepEqual(c.lambda.environment, { ENVIRONMENT: 'production', LOG_LEVEL: 'info', CORS_ORIGINS: 'https://chat.example.com' });
    assert.deepEqual(stackNames(c), { lambda: 'DevLambdaStack', server: 'DevServerStack' });
    assert.equal(config({ 'lambda.environment.LOG_LEVEL': '' }).lambda.environment.LOG_LEVEL, undefined, 'empty value removes an entry');
    // cdk.json-style nested objects work too.
    assert.equal(config({ lambda: { alarms: { p95DurationMs: 1500 } } }).lambda.alarms.p95DurationMs, 1500);
  });

  test('precedence: defaults < JSON file < context', () => {
    const file = join(TMP, 'config.json');
    writeFileSync(file, JSON.stringify({ lambda: { memoryMb: 768, timeoutSec: 20 }, server: { instanceType: 't4g.micro' } }));
    const { config: c, configFile } = loadConfig({ context: { ...BASE_CONTEXT, 'lambda.memoryMb': '1024' }, configFile: file });
    assert.equal(configFile, file);
    assert.equal(c.lambda.memoryMb, 1024, 'context wins over the file');
    assert.equal(c.lambda.timeoutSec, 20, 'file wins over defaults');
    assert.equal(c.server.instanceType, 't4g.micro');
    assert.equal(c.lambda.runtime, DEFAULTS.lambda.runtime);
    // The example file shipped in the repo is itself valid.
    assert.doesNotThrow(() => loadConfig({ context: BASE_CONTEXT, configFile: join(ROOT, 'infra', 'config.example.json') }));
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['unknown setting', { 'lambda.memorySize': '1024' }, /lambda\.memorySize: unknown setting/],
    ['bad architecture', { 'lambda.architecture': 'arm' }, /lambda\.architecture: must be one of arm64, x86_64/],
    ['bad runtime', { 'lambda.runtime': 'nodejs20.x' }, /lambda\.runtime: must be one of nodejs22\.x, nodejs24\.x/],
    ['non-number', { 'lambda.memoryMb': 'lots' }, /lambda\.memoryMb: expected a number/],
    ['memory out of range', { 'lambda.memoryMb': '64' }, /lambda\.memoryMb: must be an integer from 128 to 10240/],
    ['log retention', { 'lambda.logRetentionDays': '10' }, /lambda\.logRetentionDays: CloudWatch accepts/],
    ['two database sources', { 'lambda.database.secretId': 'a', 'lambda.database.ssmParameter': '/b' }, /lambda\.database: set only one of/],
    ['plain DATABASE_URL variable', { 'lambda.environment.DATABASE_URL': 'postgres://x' }, /lambda\.environment\.DATABASE_URL: set it through lambda\.database/],
    ['reserved Lambda variable', { 'lambda.environment.AWS_REGION': 'x' }, /lambda\.environment\.AWS_REGION: reserved by Lambda/],
    ['provisioned > reserved', { 'lambda.reservedConcurrency': '2', 'lambda.provisionedConcurrency': '3' }, /lambda\.provisionedConcurrency: 3 exceeds/],
    ['migrations without database', { 'lambda.database.migrateOnDeploy': 'true' }, /lambda\.database\.migrateOnDeploy: true needs a database/],
    ['bad e-mail', { 'lambda.alarms.email': 'nope' }, /lambda\.alarms\.email: not an e-mail/],
    ['bad CIDR', { 'server.sshCidr': '1.2.3.4' }, /server\.sshCidr: expected an IPv4 CIDR/],
    ['bad instance type', { 'server.instanceType': 'micro' }, /server\.instanceType: expected something like t3\.micro/],
    ['port 22', { 'server.port': '22' }, /server\.port: 22 is reserved/],
    ['bad plain URL', { 'server.database.plainUrl': 'mysql://x' }, /server\.database\.plainUrl: expected a postgres/],
  ];
  for (const [name, ctx, pattern] of bad) {
    test(`rejects ${name}, naming the setting`, () => {
      assert.throws(() => config(ctx), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
    });
  }

  test('warnings for risky but valid settings', () => {
    const { warnings } = loadConfig({ context: { ...BASE_CONTEXT, 'lambda.timeoutSec': '60', 'server.sshCidr': '0.0.0.0/0' }, configFile: false });
    assert.ok(warnings.some((w) => w.startsWith('lambda.timeoutSec')));
    assert.ok(warnings.some((w) => w.startsWith('server.sshCidr')));
  });

  test('instance type → AMI architecture', () => {
    assert.equal(serverArchitecture('t3.micro'), 'x86_64');
    assert.equal(serverArchitecture('t4g.micro'), 'arm64');
    assert.equal(serverArchitecture('m7gd.large'), 'arm64');
    assert.equal(serverArchitecture('c6gn.medium'), 'arm64');
    assert.equal(serverArchitecture('g4dn.xlarge'), 'x86_64');
    assert.equal(serverArchitecture('a1.medium'), 'arm64');
  });
});

describe('Lambda stack (defaults)', () => {
  let t: Template;
  let stack: MlopsLambdaStack;
  before(() => ({ t, stack } = lambdaStack()));

  test('function: runtime, architecture, handler, memory, timeout, environment', () => {
    const [, fn] = apiFunction(t);
    assert.equal(fn.Properties.Runtime, 'nodejs22.x');
    assert.deepEqual(fn.Properties.Architectures, ['arm64']);
    assert.equal(fn.Properties.Handler, 'index.handler');
    assert.equal(fn.Properties.MemorySize, 512);
    assert.equal(fn.Properties.Timeout, 30);
    assert.deepEqual(fn.Properties.Environment.Variables, { ENVIRONMENT: 'production', LOG_LEVEL: 'info' });
    assert.equal(fn.Properties.Layers, undefined, 'no secrets → no extension layer');
    assert.equal(fn.Properties.ReservedConcurrentExecutions, undefined);
    // The code is the asset of the given directory (not a NodejsFunction bundle).
    assert.match(JSON.stringify(fn.Properties.Code), /S3Key/);
    t.resourceCountIs('AWS::Lambda::Function', 1);
    t.resourceCountIs('AWS::Lambda::Alias', 0);
  });

  test('HTTP API: $default route, Lambda proxy integration with payload 2.0, $default stage', () => {
    const [fnId] = apiFunction(t);
    const [apiId, api] = only(t, 'AWS::ApiGatewayV2::Api');
    assert.equal(api.Properties.ProtocolType, 'HTTP');
    const [integrationId, integration] = only(t, 'AWS::ApiGatewayV2::Integration');
    assert.equal(integration.Properties.IntegrationType, 'AWS_PROXY');
    assert.equal(integration.Properties.PayloadFormatVersion, '2.0');
    assert.deepEqual(integration.Properties.IntegrationUri, { 'Fn::GetAtt': [fnId, 'Arn'] });
    const [, route] = only(t, 'AWS::ApiGatewayV2::Route');
    assert.equal(route.Properties.RouteKey, '$default', 'one catch-all route for every method and path, including /');
    assert.deepEqual(route.Properties.Target, { 'Fn::Join': ['', ['integrations/', { Ref: integrationId }]] });
    const [, stage] = only(t, 'AWS::ApiGatewayV2::Stage');
    assert.equal(stage.Properties.StageName, '$default');
    assert.equal(stage.Properties.AutoDeploy, true);
    assert.equal(stage.Properties.DefaultRouteSettings, undefined, 'no throttling unless configured');
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'apigateway.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
      SourceArn: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([{ Ref: apiId }])]) }),
    });
  });

  test('warmer: rate(5 minutes) rule targeting the function with the warmer payload, plus invoke permission', () => {
    const [fnId] = apiFunction(t);
    const [ruleId, rule] = only(t, 'AWS::Events::Rule');
    assert.equal(rule.Properties.ScheduleExpression, 'rate(5 minutes)');
    assert.equal(rule.Properties.State, 'ENABLED');
    assert.equal(rule.Properties.Targets.length, 1);
    assert.deepEqual(rule.Properties.Targets[0].Arn, { 'Fn::GetAtt': [fnId, 'Arn'] });
    assert.deepEqual(JSON.parse(rule.Properties.Targets[0].Input), WARMER_EVENT);
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
      SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
  });

  test('log group: explicit, 14-day retention, removed with the stack', () => {
    const [, fn] = apiFunction(t);
    const [lgId, lg] = only(t, 'AWS::Logs::LogGroup');
    assert.equal(lg.Properties.RetentionInDays, 14);
    assert.equal(lg.DeletionPolicy, 'Delete');
    assert.deepEqual(fn.Properties.LoggingConfig, { LogGroup: { Ref: lgId } });
  });

  test('alarms: errors, throttles, p95 duration', () => {
    const [fnId] = apiFunction(t);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 3);
    const dims = [{ Name: 'FunctionName', Value: { Ref: fnId } }];
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda', MetricName: 'Errors', Statistic: 'Sum', Period: 300, Threshold: 5,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold', Dimensions: dims, TreatMissingData: 'notBreaching',
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda', MetricName: 'Throttles', Statistic: 'Sum', Threshold: 1, Dimensions: dims,
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda', MetricName: 'Duration', ExtendedStatistic: 'p95', Threshold: 3000,
      ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 2, Dimensions: dims,
    });
    for (const [, alarm] of resources(t, 'AWS::CloudWatch::Alarm')) assert.equal(alarm.Properties.AlarmActions, undefined, 'no topic without an e-mail');
    t.resourceCountIs('AWS::SNS::Topic', 0);
  });

  test('no database → no secrets, no grants, no migration custom resource', () => {
    t.resourceCountIs('Custom::MlopsMigration', 0);
    t.resourceCountIs('AWS::IAM::Policy', 0);
    const [, fn] = apiFunction(t);
    assert.ok(!Object.keys(fn.Properties.Environment.Variables).some((k) => k.startsWith('DATABASE_URL')));
  });

  test('outputs: ApiUrl, FunctionName, LogGroupName', () => {
    const [fnId] = apiFunction(t);
    const [apiId] = only(t, 'AWS::ApiGatewayV2::Api');
    const [lgId] = only(t, 'AWS::Logs::LogGroup');
    const outputs = t.findOutputs('*');
    assert.deepEqual(Object.keys(outputs).sort(), ['ApiUrl', 'FunctionName', 'LogGroupName']);
    const url = JSON.stringify(outputs.ApiUrl?.Value);
    assert.match(url, /https:\/\//);
    assert.match(url, new RegExp(`"Ref":"${apiId}"`));
    assert.match(url, /execute-api/);
    assert.deepEqual(outputs.FunctionName?.Value, { Ref: fnId });
    assert.deepEqual(outputs.LogGroupName?.Value, { Ref: lgId });
  });

  test('no error annotations', () => {
    Annotations.fromStack(stack).hasNoError('*', Match.anyValue());
  });
});

// Option variants share a few combined syntheses (memoized) so the file stays fast; each test
// still checks one documented effect.
const memo = new Map<string, { t: Template; stack: MlopsLambdaStack | MlopsServerStack }>();
function cachedLambda(ctx: Record<string, unknown>): { t: Template; stack: MlopsLambdaStack } {
  const key = `lambda:${JSON.stringify(ctx)}`;
  if (!memo.has(key)) memo.set(key, lambdaStack(ctx));
  return memo.get(key) as { t: Template; stack: MlopsLambdaStack };
}
function cachedServer(ctx: Record<string, unknown>): { t: Template; stack: MlopsServerStack } {
  const key = `server:${JSON.stringify(ctx)}`;
  if (!memo.has(key)) memo.set(key, serverStack(ctx));
  return memo.get(key) as { t: Template; stack: MlopsServerStack };
}

const FULL_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:mlops/api-keys-AbCdEf';
/** Knobs that do not interact. */
const L_KNOBS = {
  'lambda.architecture': 'x86_64', 'lambda.runtime': 'nodejs24.x', 'lambda.memoryMb': '1024', 'lambda.timeoutSec': '15',
  'lambda.environment.CORS_ORIGINS': 'https://chat.example.com', 'lambda.environment.RETENTION_DAYS': '90',
  'lambda.reservedConcurrency': '10', 'lambda.httpApi.rateLimit': '50', 'lambda.httpApi.burstLimit': '100',
  'lambda.logRetentionDays': '30', 'lambda.warmer.rateMinutes': '1',
  'lambda.alarms.email': 'ops@example.com', 'lambda.alarms.errorsThreshold': '2', 'lambda.alarms.p95DurationMs': '800',
};
const L_OFF = { 'lambda.warmer.enabled': 'false', 'lambda.alarms.enabled': 'false', 'lambda.alarms.email': 'ops@example.com' };
const L_SECRET = { 'lambda.database.secretId': 'mlops/database-url', 'lambda.provisionedConcurrency': '2' };
const L_DIRECT = { 'lambda.codeDir': LAMBDA_DIR_2, 'lambda.database.secretId': 'db-pooler', 'lambda.database.directUrlSecretId': 'db-direct' };
const L_SSM = { 'lambda.database.ssmParameter': '/mlops/database-url', 'lambda.apiKeysSecretId': FULL_ARN };
const L_PLAIN = { 'lambda.database.plainUrl': 'postgresql://u:p@ep-x.neon.tech/db?sslmode=verify-full', 'lambda.database.migrateOnDeploy': 'false' };

describe('Lambda stack options', () => {
  test('x86_64, nodejs24.x, memory, timeout, extra environment', () => {
    const [, fn] = apiFunction(cachedLambda(L_KNOBS).t);
    assert.deepEqual(fn.Properties.Architectures, ['x86_64']);
    assert.equal(fn.Properties.Runtime, 'nodejs24.x');
    assert.equal(fn.Properties.MemorySize, 1024);
    assert.equal(fn.Properties.Timeout, 15);
    assert.equal(fn.Properties.Environment.Variables.CORS_ORIGINS, 'https://chat.example.com');
    assert.equal(fn.Properties.Environment.Variables.RETENTION_DAYS, '90');
    assert.equal(fn.Properties.Environment.Variables.ENVIRONMENT, 'production', 'defaults kept');
  });

  test('reserved concurrency', () => {
    const [, fn] = apiFunction(cachedLambda(L_KNOBS).t);
    assert.equal(fn.Properties.ReservedConcurrentExecutions, 10);
  });

  test('API throttling on the $default stage', () => {
    cachedLambda(L_KNOBS).t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
  });

  test('log retention and warmer rate settings', () => {
    const { t } = cachedLambda(L_KNOBS);
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 minute)' });
  });

  test('alarm e-mail → SNS topic, e-mail subscription, alarm + OK actions, AlarmTopicArn output', () => {
    const { t } = cachedLambda(L_KNOBS);
    const [topicId] = only(t, 'AWS::SNS::Topic');
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com', TopicArn: { Ref: topicId } });
    const alarms = resources(t, 'AWS::CloudWatch::Alarm');
    assert.equal(alarms.length, 3);
    for (const [, a] of alarms) {
      assert.deepEqual(a.Properties.AlarmActions, [{ Ref: topicId }]);
      assert.deepEqual(a.Properties.OKActions, [{ Ref: topicId }]);
    }
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Errors', Threshold: 2 });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Duration', Threshold: 800 });
    t.hasOutput('AlarmTopicArn', { Value: { Ref: topicId } });
  });

  test('warmer off → no rule, no events permission', () => {
    const { t } = cachedLambda(L_OFF);
    t.resourceCountIs('AWS::Events::Rule', 0);
    assert.equal(Object.keys(t.findResources('AWS::Lambda::Permission', { Properties: { Principal: 'events.amazonaws.com' } })).length, 0);
  });

  test('alarms off → no alarms and no topic, even with an e-mail', () => {
    const { t } = cachedLambda(L_OFF);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    t.resourceCountIs('AWS::SNS::Topic', 0);
  });

  test('Secrets Manager database: env names the secret, extension layer, read grant, migration custom resource', () => {
    const { t } = cachedLambda(L_SECRET);
    const [, fn] = apiFunction(t);
    const vars = fn.Properties.Environment.Variables;
    assert.equal(vars.DATABASE_URL_SECRET_ID, 'mlops/database-url');
    assert.equal(vars.DATABASE_URL, undefined, 'never the URL itself');
    assert.equal(vars.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT, '2773');
    assert.match(JSON.stringify(fn.Properties.Layers), /ParamsandsecretslayerMap.*arm64/);
    const role = fn.Properties.Role['Fn::GetAtt'][0];
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: role }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({
        Action: Match.arrayWith(['secretsmanager:GetSecretValue']),
        Resource: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([':secret:mlops/database-url-??????'])] }),
      })]) },
    });
    // Migration: a second function from the same asset, a Provider, and the custom resource.
    const migrate = resources(t, 'AWS::Lambda::Function').filter(([, r]) => r.Properties.Handler === 'index.migrate');
    assert.equal(migrate.length, 1);
    const [migrateId, migrateFn] = migrate[0] as [string, Resource];
    assert.deepEqual(migrateFn.Properties.Code, fn.Properties.Code, 'same bundle as the API function');
    assert.equal(migrateFn.Properties.Environment.Variables.DATABASE_URL_SECRET_ID, 'mlops/database-url');
    assert.ok(migrateFn.Properties.Layers, 'the migration reads the secret through the extension too');
    assert.equal(migrateFn.Properties.Timeout, 300);
    const framework = resources(t, 'AWS::Lambda::Function').filter(([, r]) => r.Properties.Handler === 'framework.onEvent');
    assert.equal(framework.length, 1, 'custom-resources Provider framework function');
    const [frameworkId, frameworkFn] = framework[0] as [string, Resource];
    assert.deepEqual(frameworkFn.Properties.Environment.Variables.USER_ON_EVENT_FUNCTION_ARN, { 'Fn::GetAtt': [migrateId, 'Arn'] });
    assert.notEqual(frameworkFn.Properties.Runtime, 'nodejs20.x', 'Lambda no longer creates nodejs20.x functions');
    const [crId, cr] = only(t, 'Custom::MlopsMigration');
    assert.deepEqual(cr.Properties.ServiceToken, { 'Fn::GetAtt': [frameworkId, 'Arn'] });
    assert.equal(cr.Properties.DatabaseSource, 'secretsmanager:mlops/database-url');
    assert.ok(fn.DependsOn?.includes(crId), 'the API function is updated only after the migrations succeed');
    t.hasOutput('MigrationFunctionName', { Value: { Ref: migrateId } });
  });

  test('migration CodeHash is the bundle hash, so a new bundle re-runs the migrations', () => {
    const hashOf = (t: Template) => {
      const cr = only(t, 'Custom::MlopsMigration')[1];
      const key = apiFunction(t)[1].Properties.Code.S3Key as string;
      assert.equal(`${cr.Properties.CodeHash}.zip`, key, 'CodeHash equals the deployed asset hash');
      return cr.Properties.CodeHash as string;
    };
    assert.notEqual(hashOf(cachedLambda(L_DIRECT).t), hashOf(cachedLambda(L_SECRET).t));
  });

  test('provisioned concurrency → live alias; the API and the warmer call the alias', () => {
    const { t } = cachedLambda(L_SECRET);
    const [aliasId, alias] = only(t, 'AWS::Lambda::Alias');
    assert.equal(alias.Properties.Name, 'live');
    assert.deepEqual(alias.Properties.ProvisionedConcurrencyConfig, { ProvisionedConcurrentExecutions: 2 });
    t.hasResourceProperties('AWS::ApiGatewayV2::Integration', { IntegrationUri: { Ref: aliasId } });
    t.hasResourceProperties('AWS::Events::Rule', { Targets: [Match.objectLike({ Arn: { Ref: aliasId } })] });
    t.hasOutput('FunctionAliasArn', { Value: { Ref: aliasId } });
  });

  test('direct URL secret is used only by the migration function', () => {
    const { t } = cachedLambda(L_DIRECT);
    const [, fn] = apiFunction(t);
    assert.equal(fn.Properties.Environment.Variables.DATABASE_URL_SECRET_ID, 'db-pooler');
    t.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.migrate', Environment: { Variables: Match.objectLike({ DATABASE_URL_SECRET_ID: 'db-direct' }) } });
    t.hasResourceProperties('Custom::MlopsMigration', { DatabaseSource: 'secretsmanager:db-direct' });
  });

  test('SSM parameter instead of a secret', () => {
    const { t } = cachedLambda(L_SSM);
    const [, fn] = apiFunction(t);
    assert.equal(fn.Properties.Environment.Variables.DATABASE_URL_SSM_PARAMETER, '/mlops/database-url');
    assert.equal(fn.Properties.Environment.Variables.DATABASE_URL_SECRET_ID, undefined);
    assert.ok(fn.Properties.Layers, 'extension layer');
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({
        Action: ['ssm:GetParameter', 'ssm:GetParameters'],
        Resource: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([':parameter/mlops/database-url'])] }),
      })]) },
    });
    t.hasResourceProperties('Custom::MlopsMigration', { DatabaseSource: 'ssm:/mlops/database-url' });
  });

  test('API keys secret (given as a full ARN) → env, layer and an exact grant', () => {
    const { t } = cachedLambda(L_SSM);
    const [, fn] = apiFunction(t);
    assert.equal(fn.Properties.Environment.Variables.MLOPS_API_KEYS_SECRET_ID, FULL_ARN);
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['secretsmanager:GetSecretValue']), Resource: FULL_ARN })]) },
    });
  });

  test('plain URL only when explicitly configured, with a synth-time warning; migrateOnDeploy false → no custom resource', () => {
    const { t, stack } = cachedLambda(L_PLAIN);
    const [, fn] = apiFunction(t);
    assert.equal(fn.Properties.Environment.Variables.DATABASE_URL, L_PLAIN['lambda.database.plainUrl']);
    assert.equal(fn.Properties.Layers, undefined, 'nothing to fetch → no extension');
    Annotations.fromStack(stack).hasWarning('*', Match.stringLikeRegexp('plain environment value'));
    t.resourceCountIs('Custom::MlopsMigration', 0);
    t.resourceCountIs('AWS::Lambda::Function', 1);
  });

  test('missing bundle → error telling the user to run npm run package', () => {
    assert.throws(() => lambdaStack({ 'lambda.codeDir': join(TMP, 'nope') }), /lambda\.codeDir: .*index\.mjs not found\. Run `npm run package` first/);
  });
});

describe('server stack (defaults)', () => {
  let t: Template;
  let stack: MlopsServerStack;
  before(() => ({ t, stack } = serverStack()));

  test('instance: t3.micro, AL2023 x86_64 AMI from the public SSM parameter, default VPC (no subnet), IMDSv2', () => {
    const [, inst] = only(t, 'AWS::EC2::Instance');
    assert.equal(inst.Properties.InstanceType, 't3.micro');
    const param = inst.Properties.ImageId.Ref as string;
    const params = t.toJSON().Parameters as Record<string, { Type: string; Default: string }>;
    assert.equal(params[param]?.Type, 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>');
    assert.equal(params[param]?.Default, '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64');
    assert.equal(inst.Properties.SubnetId, undefined);
    assert.equal(inst.Properties.NetworkInterfaces, undefined);
    assert.equal(inst.Properties.KeyName, undefined, 'no SSH key by default');
    assert.deepEqual(inst.Properties.MetadataOptions, { HttpTokens: 'required', HttpEndpoint: 'enabled' });
    assert.deepEqual(inst.Properties.CreditSpecification, { CPUCredits: 'standard' });
    t.resourceCountIs('AWS::EC2::VPC', 0);
    t.resourceCountIs('AWS::EC2::Subnet', 0);
  });

  test('security group in the default VPC opens only the service port', () => {
    const [sgId, sg] = only(t, 'AWS::EC2::SecurityGroup');
    assert.equal(sg.Properties.VpcId, undefined, 'no VpcId → default VPC');
    assert.deepEqual(sg.Properties.SecurityGroupIngress, [
      { IpProtocol: 'tcp', FromPort: 5001, ToPort: 5001, CidrIp: '0.0.0.0/0', Description: 'mlops-service HTTP' },
    ]);
    t.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
    t.hasResourceProperties('AWS::EC2::Instance', { SecurityGroupIds: [{ 'Fn::GetAtt': [sgId, 'GroupId'] }] });
  });

  test('root volume: 8 GiB gp3, encrypted', () => {
    t.hasResourceProperties('AWS::EC2::Instance', {
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 8, VolumeType: 'gp3', Encrypted: true, DeleteOnTermination: true } }],
    });
  });

  test('instance role: Session Manager, read of exactly the code object; instance waits for the policy', () => {
    const [roleId, role] = only(t, 'AWS::IAM::Role');
    assert.match(JSON.stringify(role.Properties.ManagedPolicyArns), /AmazonSSMManagedInstanceCore/);
    assert.match(JSON.stringify(role.Properties.AssumeRolePolicyDocument), /ec2\.amazonaws\.com/);
    const [policyId, policy] = only(t, 'AWS::IAM::Policy');
    const statements = policy.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>;
    assert.deepEqual(statements.map((s) => s.Action), ['s3:GetObject']);
    assert.match(JSON.stringify(statements[0]?.Resource), /\/[0-9a-f]{64}\.zip/);
    t.hasResourceProperties('AWS::IAM::InstanceProfile', { Roles: [{ Ref: roleId }] });
    const [, inst] = only(t, 'AWS::EC2::Instance');
    assert.ok(inst.DependsOn?.includes(policyId));
  });

  test('user data: Node.js 22, the asset download, the systemd unit with Restart=always, env file mode 600', () => {
    const ud = userData(t);
    assert.match(ud, /^#!\/bin\/bash\nset -euo pipefail/);
    assert.match(ud, /dnf install -y nodejs22/);
    assert.match(ud, /aws s3 cp 's3:\/\/TOKEN\/[0-9a-f]{64}\.zip'/);
    assert.match(ud, /unzip -q/);
    const files = heredocs(ud);
    const unit = files.get(`/etc/systemd/system/${SERVER_PATHS.unit}`) ?? '';
    assert.match(unit, /^Restart=always$/m);
    assert.match(unit, new RegExp(`^ExecStart=${SERVER_PATHS.node} ${SERVER_PATHS.appDir}/current/server\\.mjs$`, 'm'));
    assert.match(unit, /^EnvironmentFile=\/etc\/mlops-service\/service\.env$/m);
    assert.match(unit, /^EnvironmentFile=-\/etc\/mlops-service\/secrets\.env$/m);
    assert.match(unit, /^Requires=mlops-service-secrets\.service$/m);
    assert.match(unit, /^User=mlops$/m);
    const env = files.get('/etc/mlops-service/service.env') ?? '';
    assert.match(env, /^PORT="5001"$/m);
    assert.match(env, /^ENVIRONMENT="production"$/m);
    assert.match(env, /^DATA_DIR="\/var\/lib\/mlops-service\/data"$/m);
    assert.doesNotMatch(env, /DATABASE_URL/);
    assert.ok(ud.indexOf('umask 077') < ud.indexOf('/etc/mlops-service/service.env'), 'env files written with mode 600');
    assert.match(ud, /systemctl enable --now mlops-service-secrets\.service mlops-service\.service mlops-service-health\.timer/);
    assert.ok(files.has(`/etc/systemd/system/${SERVER_PATHS.healthTimer}`));
    assert.ok(Buffer.byteLength(ud) < 16 * 1024, 'EC2 user data limit is 16 KB');
  });

  test('boot script passes bash -n, node --check and systemd-analyze verify', (tt) => {
    const ud = userData(t);
    const dir = mkdtempSync(join(TMP, 'ud-'));
    writeFileSync(join(dir, 'user-data.sh'), ud);
    execFileSync('bash', ['-n', join(dir, 'user-data.sh')]);
    const files = heredocs(ud);
    writeFileSync(join(dir, 'fetch-secrets.mjs'), files.get(`${SERVER_PATHS.appDir}/fetch-secrets.mjs`) ?? '');
    execFileSync(process.execPath, ['--check', join(dir, 'fetch-secrets.mjs')]);
    writeFileSync(join(dir, 'healthcheck'), files.get('/usr/local/bin/mlops-service-healthcheck') ?? '');
    execFileSync('bash', ['-n', join(dir, 'healthcheck')]);
    const analyze = spawnSync('systemd-analyze', ['--version']);
    if (analyze.error) return skipOrFail(tt, 'systemd-analyze not installed (Debian package systemd): the units were not verified');
    // Point ExecStart at executables that exist here; the rest of each unit is verified as written.
    const units = [SERVER_PATHS.unit, SERVER_PATHS.secretsUnit, SERVER_PATHS.healthUnit, SERVER_PATHS.healthTimer];
    const hc = join(dir, 'hc.sh');
    writeFileSync(hc, '#!/bin/sh\n');
    chmodSync(hc, 0o755);
    for (const u of units) {
      const body = (files.get(`/etc/systemd/system/${u}`) ?? '').replaceAll(SERVER_PATHS.node, process.execPath).replaceAll('/usr/local/bin/mlops-service-healthcheck', hc);
      writeFileSync(join(dir, u), body + '\n');
    }
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...units.map((u) => `./${u}`)], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'systemd reports nothing about the units');
  });

  test('status-check alarms: system → EC2 recover action, instance → reboot', () => {
    const [instId] = only(t, 'AWS::EC2::Instance');
    const dims = [{ Name: 'InstanceId', Value: { Ref: instId } }];
    const action = (a: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':automate:', { Ref: 'AWS::Region' }, `:ec2:${a}`]] });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/EC2', MetricName: 'StatusCheckFailed_System', Dimensions: dims, Period: 60, Threshold: 1, AlarmActions: [action('recover')],
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/EC2', MetricName: 'StatusCheckFailed_Instance', Dimensions: dims, AlarmActions: [action('reboot')],
    });
  });

  test('outputs: ServerUrl (http://<public DNS>:5001), InstanceId, PublicIp, SessionManagerCommand', () => {
    const [instId] = only(t, 'AWS::EC2::Instance');
    const outputs = t.findOutputs('*');
    assert.deepEqual(Object.keys(outputs).sort(), ['InstanceId', 'PublicIp', 'ServerUrl', 'SessionManagerCommand']);
    assert.deepEqual(outputs.ServerUrl?.Value, { 'Fn::Join': ['', ['http://', { 'Fn::GetAtt': [instId, 'PublicDnsName'] }, ':5001']] });
    assert.deepEqual(outputs.InstanceId?.Value, { Ref: instId });
    assert.deepEqual(outputs.PublicIp?.Value, { 'Fn::GetAtt': [instId, 'PublicIp'] });
  });

  test('no error annotations', () => {
    Annotations.fromStack(stack).hasNoError('*', Match.anyValue());
  });
});


const S_KNOBS = {
  'server.instanceType': 't4g.micro', 'server.sshCidr': '203.0.113.7/32', 'server.keyPairName': 'my-key',
  'server.port': '8080', 'server.allowedCidr': '198.51.100.0/24', 'server.volumeGb': '20',
  'server.database.secretId': 'mlops/db', 'server.apiKeysSecretId': 'mlops/keys', 'server.alarmEmail': 'ops@example.com',
};
const S_OTHER = { 'server.amiId': 'ami-0123456789abcdef0', 'server.instanceType': 'm7i.large', 'server.statusAlarms': 'false', 'server.database.ssmParameter': '/mlops/db' };

describe('server stack options', () => {
  test('t4g.micro → arm64 AMI parameter; pinned AMI → no parameter', () => {
    const { t } = cachedServer(S_KNOBS);
    t.hasResourceProperties('AWS::EC2::Instance', { InstanceType: 't4g.micro' });
    t.hasParameter('*', { Default: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64' });
    const { t: pinned } = cachedServer(S_OTHER);
    pinned.hasResourceProperties('AWS::EC2::Instance', { ImageId: 'ami-0123456789abcdef0', InstanceType: 'm7i.large' });
    assert.ok(!JSON.stringify(pinned.toJSON().Parameters ?? {}).includes('ami-amazon-linux-latest'));
    assert.equal(only(pinned, 'AWS::EC2::Instance')[1].Properties.CreditSpecification, undefined, 'not a burstable type');
  });

  test('SSH only when configured, from the configured CIDR, with the key pair; port and CIDR settings', () => {
    const { t } = cachedServer(S_KNOBS);
    const [, sg] = only(t, 'AWS::EC2::SecurityGroup');
    assert.deepEqual(sg.Properties.SecurityGroupIngress, [
      { IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, CidrIp: '198.51.100.0/24', Description: 'mlops-service HTTP' },
      { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, CidrIp: '203.0.113.7/32', Description: 'SSH' },
    ]);
    t.hasResourceProperties('AWS::EC2::Instance', { KeyName: 'my-key' });
    assert.match(userData(t), /^PORT="8080"$/m);
    assert.match(userData(t), /127\.0\.0\.1:8080\/health/);
    assert.match(JSON.stringify(t.findOutputs('ServerUrl')), /:8080/);
  });

  test('volume size', () => {
    const [, inst] = only(cachedServer(S_KNOBS).t, 'AWS::EC2::Instance');
    assert.equal(inst.Properties.BlockDeviceMappings[0].Ebs.VolumeSize, 20);
  });

  test('database and API keys from Secrets Manager: grant + fetched at boot, never in user data', () => {
    const { t } = cachedServer(S_KNOBS);
    const files = heredocs(userData(t));
    assert.deepEqual(JSON.parse(files.get('/etc/mlops-service/secrets.json') ?? ''), [
      { env: 'DATABASE_URL', source: 'secretsmanager', id: 'mlops/db' },
      { env: 'MLOPS_API_KEYS', source: 'secretsmanager', id: 'mlops/keys' },
    ]);
    const statements = JSON.stringify(only(t, 'AWS::IAM::Policy')[1].Properties.PolicyDocument);
    assert.match(statements, /secret:mlops\/db-\?\?\?\?\?\?/);
    assert.match(statements, /secret:mlops\/keys-\?\?\?\?\?\?/);
  });

  test('database from SSM: ssm grant and an ssm entry for the fetcher', () => {
    const { t } = cachedServer(S_OTHER);
    assert.deepEqual(JSON.parse(heredocs(userData(t)).get('/etc/mlops-service/secrets.json') ?? ''), [{ env: 'DATABASE_URL', source: 'ssm', id: '/mlops/db' }]);
    assert.match(JSON.stringify(only(t, 'AWS::IAM::Policy')[1].Properties.PolicyDocument), /ssm:GetParameter.*parameter\/mlops\/db/);
  });

  test('status alarms off → none; alarm e-mail → topic on both alarms', () => {
    cachedServer(S_OTHER).t.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    const { t } = cachedServer(S_KNOBS);
    const [topicId] = only(t, 'AWS::SNS::Topic');
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const alarms = resources(t, 'AWS::CloudWatch::Alarm');
    assert.equal(alarms.length, 2);
    for (const [, a] of alarms) assert.deepEqual(a.Properties.AlarmActions[1], { Ref: topicId });
    t.hasOutput('AlarmTopicArn', {});
  });

  test('new server code → new instance logical id (cloud-init only runs on first boot)', () => {
    const id = (t: Template) => only(t, 'AWS::EC2::Instance')[0];
    assert.equal(id(serverStack({}).t), id(cachedServer({}).t), 'stable for the same code and settings');
    assert.notEqual(id(cachedServer({ 'server.codeDir': SERVER_DIR_2 }).t), id(cachedServer({}).t));
  });
});

describe('boot-time secret fetcher (against a fake aws CLI)', () => {
  test('unwraps JSON secrets, keeps plain ones, escapes quotes, writes mode 600', () => {
    const files = heredocs(userData(cachedServer(S_KNOBS).t));
    const dir = mkdtempSync(join(TMP, 'fetch-'));
    const etc = join(dir, 'etc');
    mkdirSync(etc);
    writeFileSync(join(dir, 'fetch-secrets.mjs'), files.get(`${SERVER_PATHS.appDir}/fetch-secrets.mjs`) ?? '');
    writeFileSync(join(etc, 'secrets.json'), files.get('/etc/mlops-service/secrets.json') ?? '');
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    // Fake `aws`: the database secret is JSON, the keys secret a plain string with a quote.
    writeFileSync(join(bin, 'aws'), [
      '#!/bin/sh',
      'case "$*" in',
      '  *"--secret-id mlops/db "*) echo \'{"DATABASE_URL":"postgresql://u:p@h/db?sslmode=verify-full","other":1}\' ;;',
      '  *"--secret-id mlops/keys "*) echo \'k1,k"2\' ;;',
      '  *) echo "unexpected: $*" >&2; exit 1 ;;',
      'esac',
    ].join('\n') + '\n');
    chmodSync(join(bin, 'aws'), 0o755);
    execFileSync(process.execPath, [join(dir, 'fetch-secrets.mjs')], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, MLOPS_ETC_DIR: etc } });
    const out = readFileSync(join(etc, 'secrets.env'), 'utf8');
    assert.equal(out, 'DATABASE_URL="postgresql://u:p@h/db?sslmode=verify-full"\nMLOPS_API_KEYS="k1,k\\"2"\n');
    assert.equal(statSync(join(etc, 'secrets.env')).mode & 0o777, 0o600);
  });
});

/**
 * CloudFormation-rule findings (not our own annotations) in a cloud assembly's validation report.
 * CDK writes the report whenever validation ran, with an empty `pluginReports` when nothing was
 * found; no report means validation never ran, which must not read as "no findings".
 */
function cfnFindings(dir: string): string[] {
  const reportFile = join(dir, 'validation-report.json');
  assert.ok(existsSync(reportFile), `no ${reportFile}: CDK's CloudFormation validation did not run`);
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { pluginReports: Array<{ pluginName: string; violations: Array<{ ruleName: string; description: string }> }> };
  assert.ok(Array.isArray(report.pluginReports), `${reportFile} has no pluginReports list`);
  return report.pluginReports
    .filter((r) => r.pluginName !== 'Construct Annotations')
    .flatMap((r) => r.violations.map((v) => `${v.ruleName}: ${v.description}`));
}

describe('CloudFormation validation', () => {
  // The CLI synth below validates the example config (secret, direct URL, e-mail, throttling,
  // API keys, provisioned concurrency, migrations; t4g server with secrets). Validation costs about
  // a second per stack, so only the variants it does not cover are validated here; the defaults
  // are subsets of these.
  test('the variants the CLI synth does not cover pass CDK\'s built-in CloudFormation rules: a report with no error and only the expected pinned-AMI warning', () => {
    const app = newApp(true);
    new MlopsLambdaStack(app, 'LambdaKnobs', { config: config(L_KNOBS) });
    new MlopsLambdaStack(app, 'LambdaSsm', { config: config(L_SSM) });
    new MlopsServerStack(app, 'ServerKnobs', { config: config(S_KNOBS) });
    new MlopsServerStack(app, 'ServerOther', { config: config(S_OTHER) });
    // With the cdk.json flags an error finding makes synth throw; warnings land in the report.
    const assembly = app.synth();
    assert.equal(assembly.stacks.length, 4);
    assert.deepEqual(
      cfnFindings(assembly.directory),
      // Expected: server.amiId pins a regional AMI id, which is the point of that setting.
      ['W9010: ImageId: Hardcoded AMI ID - use a parameter or mapping for portability'],
    );
  });
});

describe('npm scripts', () => {
  test('synth without the bundles → exit 1 telling the user to run npm run package', async () => {
    const r = await runScript('synth.ts', ['-c', 'configFile=infra/config.example.json', '-c', `lambda.codeDir=${join(TMP, 'missing')}`, '-c', `server.codeDir=${SERVER_DIR}`], noAwsEnv(CLI_HOME));
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /missing\/index\.mjs \(lambda\.codeDir\)/);
    assert.match(r.out, /npm run package/);
  });

  test('deploy without credentials → exit 2 with a clear message, before the CDK CLI runs', async () => {
    // Only the Lambda bundle exists: deploying the Lambda stack alone must not ask for the server's.
    const r = await runScript('cdk.ts', ['deploy', 'MlopsLambdaStack', '-c', 'configFile=infra/config.example.json', '-c', `lambda.codeDir=${LAMBDA_DIR}`, '-c', `server.codeDir=${join(TMP, 'missing')}`], noAwsEnv(CLI_HOME));
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /No AWS credentials found/);
  });

  test('--help for deploy and destroy', async () => {
    const [d, x] = await Promise.all([
      runScript('cdk.ts', ['deploy', 'MlopsServerStack', '--help'], noAwsEnv(CLI_HOME)),
      runScript('cdk.ts', ['destroy', '--all', '--help'], noAwsEnv(CLI_HOME)),
    ]);
    assert.equal(d.code, 0);
    assert.match(d.out, /npm run deploy:server/);
    assert.equal(x.code, 0);
    assert.match(x.out, /npm run destroy/);
  });

  test('real `cdk synth` CLI offline: no credentials, throwaway HOME, exit 0, both templates, a validation report without findings', { timeout: 90_000 }, async () => {
    const r = await cliSynth;
    assert.equal(r.code, 0, r.out);
    for (const name of ['MlopsLambdaStack', 'MlopsServerStack']) {
      const file = join(CLI_OUT, `${name}.template.json`);
      assert.ok(existsSync(file), `${file} written`);
    }
    // The example config (secret, direct URL, alarms e-mail, throttling, t4g) plus provisioned concurrency.
    const lambdaT = JSON.parse(readFileSync(join(CLI_OUT, 'MlopsLambdaStack.template.json'), 'utf8')) as { Resources: Record<string, Resource> };
    assert.ok(Object.values(lambdaT.Resources).some((r) => r.Type === 'Custom::MlopsMigration'));
    assert.ok(Object.values(lambdaT.Resources).some((r) => r.Type === 'AWS::Lambda::Alias'));
    assert.deepEqual(cfnFindings(CLI_OUT), [], 'CDK validated both templates without findings');
    assert.doesNotMatch(r.out, /error/i);
  });
});

describe('npm test under CI: nothing may skip', () => {
  // Tiny suites in TMP, run through scripts/run-tests.mjs exactly as `npm test -- <file>` would.
  const SKIP_HELPER = join(ROOT, 'test', 'helpers', 'skip.ts');
  const suite = (name: string, body: string) => {
    const file = join(TMP, name);
    writeFileSync(file, `import { test } from 'node:test';\nimport { skipOrFail } from ${JSON.stringify(SKIP_HELPER)};\n${body}\n`);
    return file;
  };
  const PASSING = suite('passes.test.ts', "test('passes', () => {});");
  const SKIPPING = suite('skips.test.ts', "test('passes', () => {});\ntest('skips by option', { skip: 'no widget here' }, () => {});");
  const HELPER = suite('helper.test.ts', "test('needs a widget', (t) => skipOrFail(t, 'no widget here'));");

  /** `npm test -- file` with CI and SKIP_* as given and nothing inherited of either. */
  function npmTest(file: string, vars: Record<string, string>): Promise<{ code: number; out: string }> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k === 'CI' || k.startsWith('SKIP_')) delete env[k];
    delete env.NODE_TEST_CONTEXT; // set for this file's own process: a child `node --test` would refuse to run files
    return new Promise((done) => {
      const child = spawn(process.execPath, [join(ROOT, 'scripts', 'run-tests.mjs'), file], { cwd: ROOT, env: { ...env, ...vars } });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('exit', (code) => done({ code: code ?? 1, out }));
    });
  }

  test('any truthy CI (true, 1, yes) refuses a preset SKIP_* variable before running a test; CI unset, empty, 0 or false runs', async () => {
    const refused = await Promise.all(['true', '1', 'yes'].map((ci) => npmTest(PASSING, { CI: ci, SKIP_POSTGRES: '1' })));
    for (const r of refused) {
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /FAIL: CI is set \(CI=\w+\) and SKIP_POSTGRES=1 would skip tests/);
      assert.doesNotMatch(r.out, /ℹ tests/, 'no test ran');
    }
    const unset: Record<string, string>[] = [{}, { CI: '' }, { CI: '0' }, { CI: 'false' }];
    const allowed = await Promise.all(unset.map((ci) => npmTest(PASSING, { ...ci, SKIP_PROMTOOL: '1' })));
    for (const r of allowed) {
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /ℹ pass 1/);
    }
  });

  test('under CI a skipped test fails the run, named; outside CI it passes and is listed', async () => {
    const [ci, local] = await Promise.all([npmTest(SKIPPING, { CI: '1' }), npmTest(SKIPPING, {})]);
    assert.equal(ci.code, 1, ci.out);
    assert.match(ci.out, /1 test\(s\) skipped or todo under CI: the run FAILS/);
    assert.match(ci.out, /skips by option: SKIP no widget here/);
    assert.equal(local.code, 0, local.out);
    assert.match(local.out, /1 test\(s\) skipped or todo:\n.*skips by option: SKIP no widget here/);
  });

  test('skipOrFail (test/helpers/skip.ts): under CI the test fails with the reason; outside CI it is skipped loudly', async () => {
    const [ci, local] = await Promise.all([npmTest(HELPER, { CI: 'yes' }), npmTest(HELPER, {})]);
    assert.equal(ci.code, 1, ci.out);
    assert.match(ci.out, /ℹ fail 1/);
    assert.match(ci.out, /CI is set, so this test may not skip: no widget here/);
    assert.equal(local.code, 0, local.out);
    assert.match(local.out, /ℹ skipped 1/);
    assert.match(local.out, /!! SKIPPING: no widget here/);
  });
});
