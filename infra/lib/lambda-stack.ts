/**
 * The Lambda stack: the packaged bundle (`dist/lambda`) as a function behind an API Gateway HTTP
 * API, a keep-warm schedule, alarms, the database URL from Secrets Manager / SSM, and the
 * migrations run once per deploy by a custom resource.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  Annotations,
  CfnOutput,
  CustomResource,
  Duration,
  FileSystem,
  RemovalPolicy,
  Stack,
  Tags,
  type StackProps,
} from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { resolvePath, type DatabaseConfig, type InfraConfig } from '../config.ts';

/** The payload the warmer sends; the handler answers it without running the app. */
export const WARMER_EVENT = { source: 'mlops.warmer', action: 'warm' } as const;

/** Version of the AWS Parameters and Secrets Lambda Extension layer. */
export const PARAMS_AND_SECRETS_VERSION = lambda.ParamsAndSecretsVersions.V1_0_103;

export interface MlopsLambdaStackProps extends StackProps {
  config: InfraConfig;
}

/** Imports a secret given as a name, a full ARN (with the 6-character suffix) or a partial ARN. */
export function importSecret(scope: Construct, id: string, secretId: string): secretsmanager.ISecret {
  if (!secretId.startsWith('arn:')) return secretsmanager.Secret.fromSecretNameV2(scope, id, secretId);
  // Secrets Manager appends "-" and 6 random characters to the name in the full ARN.
  return /:secret:.+-[A-Za-z0-9]{6}$/.test(secretId)
    ? secretsmanager.Secret.fromSecretCompleteArn(scope, id, secretId)
    : secretsmanager.Secret.fromSecretPartialArn(scope, id, secretId);
}

/** ARN of an SSM parameter given by name (`/a/b` or `a`) or ARN. */
export function parameterArn(scope: Construct, nameOrArn: string): string {
  if (nameOrArn.startsWith('arn:')) return nameOrArn;
  const name = nameOrArn.startsWith('/') ? nameOrArn.slice(1) : nameOrArn;
  return Stack.of(scope).formatArn({ service: 'ssm', resource: 'parameter', resourceName: name });
}

/** Grants GetParameter on a SecureString parameter (decryption with the AWS-managed key needs no extra grant). */
export function grantParameterRead(scope: Construct, grantee: iam.IGrantable, nameOrArn: string): void {
  iam.Grant.addToPrincipal({
    grantee,
    actions: ['ssm:GetParameter', 'ssm:GetParameters'],
    resourceArns: [parameterArn(scope, nameOrArn)],
    scope,
  });
}

interface SecretSource {
  /** Environment variables naming the source (never the secret value, except for plainUrl). */
  env: Record<string, string>;
  /** Grants read access to a principal. */
  grant: (grantee: iam.IGrantable) => void;
  /** True when the value must be fetched at run time (extension on Lambda, AWS CLI on EC2). */
  fetched: boolean;
  /** Human-readable, secret-free description (custom-resource property, docs). */
  describe: string;
}

/** Environment + grants for a database source; `plainUrl` puts the URL itself in DATABASE_URL. */
export function databaseSource(scope: Construct, id: string, db: DatabaseConfig): SecretSource | undefined {
  if (db.secretId !== undefined) {
    const secret = importSecret(scope, `${id}Secret`, db.secretId);
    return { env: { DATABASE_URL_SECRET_ID: db.secretId }, grant: (g) => secret.grantRead(g), fetched: true, describe: `secretsmanager:${db.secretId}` };
  }
  if (db.ssmParameter !== undefined) {
    const name = db.ssmParameter;
    return { env: { DATABASE_URL_SSM_PARAMETER: name }, grant: (g) => grantParameterRead(scope, g, name), fetched: true, describe: `ssm:${name}` };
  }
  if (db.plainUrl !== undefined) {
    Annotations.of(scope).addWarningV2(
      `@mlops/plain-database-url-${id}`,
      'The database URL (with its password) is stored as a plain environment value, readable by anyone who can ' +
        'describe the resource. Prefer database.secretId (Secrets Manager) or database.ssmParameter (SSM SecureString).',
    );
    return { env: { DATABASE_URL: db.plainUrl }, grant: () => undefined, fetched: false, describe: 'plain-environment-value' };
  }
  return undefined;
}

/** API-keys secret, if configured. */
export function apiKeysSource(scope: Construct, secretId: string | undefined): SecretSource | undefined {
  if (secretId === undefined) return undefined;
  const secret = importSecret(scope, 'ApiKeysSecret', secretId);
  return { env: { MLOPS_API_KEYS_SECRET_ID: secretId }, grant: (g) => secret.grantRead(g), fetched: true, describe: `secretsmanager:${secretId}` };
}

/** Throws a clear error when a code directory has not been built. */
export function requireBuilt(setting: string, dir: string, entry: string): void {
  if (!existsSync(join(dir, entry))) {
    throw new Error(`${setting}: ${join(dir, entry)} not found. Run \`npm run package\` first (or point ${setting} at a built directory).`);
  }
}

export class MlopsLambdaStack extends Stack {
  readonly function: lambda.Function;
  /** What API Gateway and the warmer invoke: the `live` alias with provisioned concurrency, else the function. */
  readonly invokeTarget: lambda.IFunction;
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly logGroup: logs.LogGroup;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly alarmTopic?: sns.Topic;
  readonly migration?: CustomResource;

  constructor(scope: Construct, id: string, props: MlopsLambdaStackProps) {
    const { config, ...stackProps } = props;
    super(scope, id, { description: `${config.serviceName} on AWS Lambda behind an API Gateway HTTP API`, ...stackProps });
    for (const [k, v] of Object.entries(config.tags)) Tags.of(this).add(k, v);
    const L = config.lambda;

    const codeDir = resolvePath(L.codeDir);
    requireBuilt('lambda.codeDir', codeDir, 'index.mjs');
    // One asset for both functions: the exact bundle `npm run package` zips.
    const code = lambda.Code.fromAsset(codeDir);
    const runtime = L.runtime === 'nodejs24.x' ? lambda.Runtime.NODEJS_24_X : lambda.Runtime.NODEJS_22_X;
    const architecture = L.architecture === 'x86_64' ? lambda.Architecture.X86_64 : lambda.Architecture.ARM_64;
    const retention = L.logRetentionDays as logs.RetentionDays;

    const database = databaseSource(this, 'Database', L.database);
    const apiKeys = apiKeysSource(this, L.apiKeysSecretId);
    const sources = [database, apiKeys].filter((s): s is SecretSource => s !== undefined);
    // The service reads secrets through the extension's localhost:2773 endpoint, cached for 5 min.
    const extension = lambda.ParamsAndSecretsLayerVersion.fromVersion(PARAMS_AND_SECRETS_VERSION, {
      cacheEnabled: true,
      logLevel: lambda.ParamsAndSecretsLogLevel.WARN,
    });

    // No NODE_OPTIONS=--enable-source-maps: the Lambda bundle ships readable names instead of
    // source maps (scripts/package-lambda.ts), and the flag would parse maps on every cold start.
    const baseEnv: Record<string, string> = { ...L.environment };

    this.logGroup = new logs.LogGroup(this, 'FunctionLogGroup', {
      retention,
      // `npm run destroy` should leave nothing behind.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.function = new lambda.Function(this, 'Function', {
      ...(L.functionName !== undefined ? { functionName: L.functionName } : {}),
      description: `${config.serviceName} HTTP API + warmer handler`,
      runtime,
      architecture,
      handler: 'index.handler',
      code,
      memorySize: L.memoryMb,
      timeout: Duration.seconds(L.timeoutSec),
      environment: { ...baseEnv, ...Object.assign({}, ...sources.map((s) => s.env)) },
      logGroup: this.logGroup,
      ...(L.reservedConcurrency !== undefined ? { reservedConcurrentExecutions: L.reservedConcurrency } : {}),
      ...(sources.some((s) => s.fetched) ? { paramsAndSecrets: extension } : {}),
    });
    for (const s of sources) s.grant(this.function);

    // Provisioned concurrency lives on a version, so the API must call an alias to benefit from it.
    if (L.provisionedConcurrency !== undefined) {
      this.invokeTarget = new lambda.Alias(this, 'LiveAlias', {
        aliasName: 'live',
        version: this.function.currentVersion,
        provisionedConcurrentExecutions: L.provisionedConcurrency,
      });
    } else {
      this.invokeTarget = this.function;
    }

    // HTTP API: the `$default` route catches every method and path (including `/`) on the
    // `$default` stage, so the function sees `/health` rather than `/default/<name>/health`.
    this.httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      apiName: `${config.serviceName}-http-api`,
      description: `${config.serviceName} (Lambda)`,
      defaultIntegration: new HttpLambdaIntegration('LambdaIntegration', this.invokeTarget, {
        payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
      }),
      // Created below so it can carry throttling.
      createDefaultStage: false,
    });
    const throttle = L.httpApi.rateLimit !== undefined || L.httpApi.burstLimit !== undefined
      ? {
          ...(L.httpApi.rateLimit !== undefined ? { rateLimit: L.httpApi.rateLimit } : {}),
          ...(L.httpApi.burstLimit !== undefined ? { burstLimit: L.httpApi.burstLimit } : {}),
        }
      : undefined;
    this.stage = this.httpApi.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      ...(throttle !== undefined ? { throttle } : {}),
    });

    if (L.warmer.enabled) {
      new events.Rule(this, 'WarmerRule', {
        description: `Keeps one ${config.serviceName} environment warm`,
        schedule: events.Schedule.rate(Duration.minutes(L.warmer.rateMinutes)),
        targets: [
          new eventTargets.LambdaFunction(this.invokeTarget, {
            event: events.RuleTargetInput.fromObject(WARMER_EVENT),
            // A missed warm-up is harmless; retrying one only adds invocations.
            retryAttempts: 0,
          }),
        ],
      });
    }

    if (L.alarms.enabled) {
      const period = Duration.minutes(5);
      this.alarms.push(
        new cloudwatch.Alarm(this, 'ErrorsAlarm', {
          alarmDescription: `${config.serviceName}: Lambda errors ≥ ${L.alarms.errorsThreshold} in 5 minutes`,
          metric: this.function.metricErrors({ period, statistic: cloudwatch.Stats.SUM }),
          threshold: L.alarms.errorsThreshold,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        new cloudwatch.Alarm(this, 'ThrottlesAlarm', {
          alarmDescription: `${config.serviceName}: Lambda throttles ≥ ${L.alarms.throttlesThreshold} in 5 minutes`,
          metric: this.function.metricThrottles({ period, statistic: cloudwatch.Stats.SUM }),
          threshold: L.alarms.throttlesThreshold,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        new cloudwatch.Alarm(this, 'DurationP95Alarm', {
          alarmDescription: `${config.serviceName}: Lambda p95 duration > ${L.alarms.p95DurationMs} ms for 10 minutes`,
          metric: this.function.metricDuration({ period, statistic: cloudwatch.Stats.p(95) }),
          threshold: L.alarms.p95DurationMs,
          // Two periods so one slow cold start at low traffic does not page anyone.
          evaluationPeriods: 2,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
      if (L.alarms.email !== undefined) {
        this.alarmTopic = new sns.Topic(this, 'AlarmTopic', { displayName: `${config.serviceName} alarms` });
        this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(L.alarms.email));
        const action = new cwActions.SnsAction(this.alarmTopic);
        for (const alarm of this.alarms) {
          alarm.addAlarmAction(action);
          alarm.addOkAction(action);
        }
      }
    }

    if (L.database.migrateOnDeploy === true && database !== undefined) {
      // Migrations use the direct (non-pooler) URL when given: the pooler drops session advisory locks.
      const direct = databaseSource(this, 'DirectDatabase', {
        ...(L.database.directUrlSecretId !== undefined ? { secretId: L.database.directUrlSecretId } : {}),
        ...(L.database.directUrlSsmParameter !== undefined ? { ssmParameter: L.database.directUrlSsmParameter } : {}),
      });
      const migrateDb = direct ?? database;
      const migrateLogGroup = new logs.LogGroup(this, 'MigrateLogGroup', { retention, removalPolicy: RemovalPolicy.DESTROY });
      const migrateFn = new lambda.Function(this, 'MigrateFunction', {
        description: `${config.serviceName} database migrations (CloudFormation custom resource)`,
        runtime,
        architecture,
        handler: 'index.migrate',
        code,
        memorySize: L.memoryMb,
        timeout: Duration.seconds(L.database.migrationTimeoutSec),
        environment: { ...baseEnv, ...migrateDb.env },
        logGroup: migrateLogGroup,
        ...(migrateDb.fetched ? { paramsAndSecrets: extension } : {}),
      });
      migrateDb.grant(migrateFn);

      const provider = new cr.Provider(this, 'MigrationProvider', {
        onEventHandler: migrateFn,
        logGroup: new logs.LogGroup(this, 'MigrationProviderLogGroup', { retention, removalPolicy: RemovalPolicy.DESTROY }),
      });
      this.migration = new CustomResource(this, 'Migration', {
        serviceToken: provider.serviceToken,
        resourceType: 'Custom::MlopsMigration',
        properties: {
          // A new bundle (hence possibly new migrations) changes this and makes CloudFormation send
          // an Update; an unchanged bundle leaves the resource alone.
          CodeHash: FileSystem.fingerprint(codeDir),
          DatabaseSource: migrateDb.describe,
        },
      });
      // Schema first, then the code that needs it; a failed migration rolls the deploy back
      // before the API function changes.
      this.function.node.addDependency(this.migration);
      new CfnOutput(this, 'MigrationFunctionName', { value: migrateFn.functionName, description: 'Runs the SQL migrations on deploy' });
    }

    new CfnOutput(this, 'ApiUrl', { value: this.stage.url, description: 'Base URL of the HTTP API ($default stage)' });
    new CfnOutput(this, 'FunctionName', { value: this.function.functionName, description: 'The API function' });
    new CfnOutput(this, 'LogGroupName', { value: this.logGroup.logGroupName, description: 'CloudWatch log group of the API function' });
    if (this.alarmTopic !== undefined) {
      new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn, description: 'SNS topic the alarms notify' });
    }
    if (this.invokeTarget !== this.function) {
      new CfnOutput(this, 'FunctionAliasArn', { value: this.invokeTarget.functionArn, description: 'Alias with provisioned concurrency that the API calls' });
    }
  }
}
