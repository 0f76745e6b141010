/**
 * The EC2 alternative: one Amazon Linux 2023 instance in the account's DEFAULT VPC running the
 * bundled server (`dist/server/server.mjs`) as a systemd unit.
 *
 * Default VPC without a lookup: `Vpc.fromLookup` needs credentials at synth time, so this stack
 * uses the L1 resources and leaves the network unspecified. CloudFormation then does what the EC2
 * API does: a security group without `VpcId` is created in the region's default VPC, and an
 * instance without `SubnetId`/`NetworkInterfaces` is launched in a default subnet of the default
 * VPC (which assigns a public IPv4 address and DNS name). The template therefore synthesizes
 * offline and deploys into whichever account/region the CLI targets. An account without a default
 * VPC fails at deploy time ("No default VPC for this user"); `aws ec2 create-default-vpc` fixes it.
 */
import { createHash } from 'node:crypto';
import {
  Aws,
  CfnOutput,
  Duration,
  Fn,
  Stack,
  Tags,
  type StackProps,
} from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { resolvePath, serverArchitecture, type InfraConfig } from '../config.ts';
import { apiKeysSource, databaseSource, requireBuilt } from './lambda-stack.ts';

export interface MlopsServerStackProps extends StackProps {
  config: InfraConfig;
}

/** Public SSM parameter with the latest Amazon Linux 2023 AMI for an architecture (resolved at deploy). */
export function al2023AmiParameter(arch: 'arm64' | 'x86_64'): string {
  return `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${arch}`;
}

/** Where things live on the instance. */
export const SERVER_PATHS = {
  unit: 'mlops-service.service',
  secretsUnit: 'mlops-service-secrets.service',
  healthUnit: 'mlops-service-health.service',
  healthTimer: 'mlops-service-health.timer',
  appDir: '/opt/mlops-service',
  dataDir: '/var/lib/mlops-service',
  etcDir: '/etc/mlops-service',
  node: '/usr/bin/node-22',
} as const;

interface SecretSpec {
  env: string;
  source: 'secretsmanager' | 'ssm';
  id: string;
}

/** Double-quoted value for a systemd EnvironmentFile (no `$`/`%` expansion happens there). */
function envFileValue(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * Boot-time secret fetcher (runs as root before the service): reads each secret/parameter with
 * the AWS CLI, unwraps `{"DATABASE_URL": "..."}`-style JSON, and writes a mode-600 env file.
 * Written without `${}` so the TypeScript template below does not interpolate it.
 */
const FETCH_SECRETS_SCRIPT = String.raw`import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, renameSync, chmodSync } from 'node:fs';
const dir = process.env.MLOPS_ETC_DIR || '/etc/mlops-service';
const specs = JSON.parse(readFileSync(dir + '/secrets.json', 'utf8'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function fetchOne(s) {
  const args = s.source === 'ssm'
    ? ['ssm', 'get-parameter', '--name', s.id, '--with-decryption', '--query', 'Parameter.Value', '--output', 'text']
    : ['secretsmanager', 'get-secret-value', '--secret-id', s.id, '--query', 'SecretString', '--output', 'text'];
  let value = execFileSync('aws', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).replace(/\r?\n$/, '');
  if (value.trimStart().startsWith('{')) {
    let obj;
    // Never let a parse error echo part of the secret into the journal.
    try { obj = JSON.parse(value); } catch { throw new Error(s.id + ': looks like JSON but does not parse'); }
    if (typeof obj[s.env] !== 'string') throw new Error(s.id + ': JSON secret has no string key ' + s.env);
    value = obj[s.env];
  }
  if (/[\r\n]/.test(value)) throw new Error(s.id + ': value spans several lines');
  return value;
}
const lines = [];
for (const s of specs) {
  for (let attempt = 1; ; attempt++) {
    try {
      const v = fetchOne(s);
      lines.push(s.env + '="' + v.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"');
      break;
    } catch (e) {
      if (attempt >= 10) { console.error('giving up on ' + s.env + ': ' + e.message); process.exit(1); }
      console.error('fetching ' + s.env + ' failed (attempt ' + attempt + '): ' + e.message);
      await sleep(attempt * 3000);
    }
  }
}
writeFileSync(dir + '/secrets.env.tmp', lines.join('\n') + '\n', { mode: 0o600 });
chmodSync(dir + '/secrets.env.tmp', 0o600);
renameSync(dir + '/secrets.env.tmp', dir + '/secrets.env');
console.log('wrote ' + lines.length + ' secret(s) to ' + dir + '/secrets.env');
`;

export interface UserDataInput {
  serviceName: string;
  port: number;
  bucket: string;
  key: string;
  region: string;
  environment: Record<string, string>;
  secrets: SecretSpec[];
}

/** The instance's boot script (cloud-init runs it once, as root, on first boot). */
export function serverUserDataLines(u: UserDataInput): string[] {
  const P = SERVER_PATHS;
  const envFile = Object.entries(u.environment).map(([k, v]) => `${k}=${envFileValue(v)}`).join('\n');
  const heredoc = (path: string, body: string): string => `cat > ${path} <<'MLOPS_EOF'\n${body}\nMLOPS_EOF`;
  return [
    'set -euo pipefail',
    '# Output goes to /var/log/cloud-init-output.log.',
    `export AWS_REGION='${u.region}' AWS_DEFAULT_REGION='${u.region}'`,
    'for i in 1 2 3 4 5; do dnf install -y nodejs22 unzip && break; sleep 10; done',
    `test -x ${P.node}`,
    `id -u mlops >/dev/null 2>&1 || useradd --system --user-group --home-dir ${P.dataDir} --shell /sbin/nologin mlops`,
    `install -d -o root -g root -m 755 ${P.appDir}`,
    `install -d -o mlops -g mlops -m 700 ${P.dataDir} ${P.dataDir}/data`,
    `install -d -o root -g root -m 700 ${P.etcDir}`,
    '# The server bundle is a CDK S3 asset; the instance role may read exactly this object.',
    // Retried: the instance role's policy can take a few seconds to become effective.
    `for i in 1 2 3 4 5 6; do aws s3 cp 's3://${u.bucket}/${u.key}' /tmp/mlops-server.zip && break; sleep 10; done`,
    'test -s /tmp/mlops-server.zip',
    `rm -rf ${P.appDir}/current && mkdir -p ${P.appDir}/current`,
    `unzip -q /tmp/mlops-server.zip -d ${P.appDir}/current && rm -f /tmp/mlops-server.zip`,
    `test -f ${P.appDir}/current/server.mjs`,
    `chmod -R a+rX ${P.appDir}/current`,
    'umask 077',
    heredoc(`${P.etcDir}/service.env`, envFile),
    heredoc(`${P.etcDir}/secrets.json`, JSON.stringify(u.secrets)),
    heredoc(`${P.appDir}/fetch-secrets.mjs`, FETCH_SECRETS_SCRIPT.trimEnd()),
    'umask 022',
    heredoc(`/etc/systemd/system/${P.secretsUnit}`, [
      '[Unit]',
      `Description=Fetch ${u.serviceName} secrets into ${P.etcDir}/secrets.env (mode 600)`,
      'Wants=network-online.target',
      'After=network-online.target',
      '',
      '[Service]',
      'Type=oneshot',
      'RemainAfterExit=yes',
      `Environment=AWS_REGION=${u.region}`,
      `ExecStart=${P.node} ${P.appDir}/fetch-secrets.mjs`,
      '',
      '[Install]',
      'WantedBy=multi-user.target',
    ].join('\n')),
    heredoc(`/etc/systemd/system/${P.unit}`, [
      '[Unit]',
      `Description=${u.serviceName} (metrics service for AI chat apps)`,
      'Wants=network-online.target',
      `After=network-online.target ${P.secretsUnit}`,
      // Without its secrets the service would silently fall back to the embedded database.
      `Requires=${P.secretsUnit}`,
      'StartLimitIntervalSec=0',
      '',
      '[Service]',
      'Type=simple',
      'User=mlops',
      'Group=mlops',
      `WorkingDirectory=${P.appDir}/current`,
      `EnvironmentFile=${P.etcDir}/service.env`,
      `EnvironmentFile=-${P.etcDir}/secrets.env`,
      `ExecStart=${P.node} ${P.appDir}/current/server.mjs`,
      'Restart=always',
      'RestartSec=5',
      'NoNewPrivileges=yes',
      'PrivateTmp=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      `ReadWritePaths=${P.dataDir}`,
      'LimitNOFILE=65536',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
    ].join('\n')),
    heredoc('/usr/local/bin/mlops-service-healthcheck', [
      '#!/bin/bash',
      '# A process that is alive but not answering is restarted (Restart=always only covers exits).',
      `url="http://127.0.0.1:${u.port}/health"`,
      'for i in 1 2 3; do curl -fsS -m 5 -o /dev/null "$url" && exit 0; sleep 10; done',
      `echo "${u.serviceName}: /health failed 3 times, restarting"`,
      `systemctl restart ${P.unit}`,
    ].join('\n')),
    'chmod 755 /usr/local/bin/mlops-service-healthcheck',
    heredoc(`/etc/systemd/system/${P.healthUnit}`, [
      '[Unit]',
      `Description=Health check of ${u.serviceName}`,
      '',
      '[Service]',
      'Type=oneshot',
      'ExecStart=/usr/local/bin/mlops-service-healthcheck',
    ].join('\n')),
    heredoc(`/etc/systemd/system/${P.healthTimer}`, [
      '[Unit]',
      `Description=Check ${u.serviceName} /health every minute`,
      '',
      '[Timer]',
      'OnBootSec=5min',
      'OnUnitActiveSec=1min',
      '',
      '[Install]',
      'WantedBy=timers.target',
    ].join('\n')),
    'systemctl daemon-reload',
    `systemctl enable --now ${P.secretsUnit} ${P.unit} ${P.healthTimer}`,
  ];
}

export class MlopsServerStack extends Stack {
  readonly instance: ec2.CfnInstance;
  readonly securityGroup: ec2.CfnSecurityGroup;
  readonly role: iam.Role;
  readonly alarmTopic?: sns.Topic;

  constructor(scope: Construct, id: string, props: MlopsServerStackProps) {
    const { config, ...stackProps } = props;
    super(scope, id, { description: `${config.serviceName} on one EC2 instance in the default VPC`, ...stackProps });
    for (const [k, v] of Object.entries(config.tags)) Tags.of(this).add(k, v);
    const S = config.server;

    const codeDir = resolvePath(S.codeDir);
    requireBuilt('server.codeDir', codeDir, 'server.mjs');
    const asset = new s3assets.Asset(this, 'ServerCode', { path: codeDir });

    const arch = serverArchitecture(S.instanceType);
    // The public parameter becomes a CloudFormation parameter resolved at deploy time: no lookup.
    const imageId = S.amiId ?? ec2.MachineImage.fromSsmParameter(al2023AmiParameter(arch)).getImage(this).imageId;

    const ingress: ec2.CfnSecurityGroup.IngressProperty[] = [
      { ipProtocol: 'tcp', fromPort: S.port, toPort: S.port, cidrIp: S.allowedCidr, description: `${config.serviceName} HTTP` },
    ];
    if (S.sshCidr !== undefined) {
      ingress.push({ ipProtocol: 'tcp', fromPort: 22, toPort: 22, cidrIp: S.sshCidr, description: 'SSH' });
    }
    // No VpcId: created in the default VPC (see the file comment).
    this.securityGroup = new ec2.CfnSecurityGroup(this, 'SecurityGroup', {
      groupDescription: `${config.serviceName} server: service port${S.sshCidr !== undefined ? ' and SSH' : ' only'}`,
      securityGroupIngress: ingress,
    });

    this.role = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `${config.serviceName} server: Session Manager, its code asset and its secrets`,
      // Session Manager instead of SSH keys: shell access is IAM-controlled and logged.
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    // Exactly the bundle object, not the whole bootstrap bucket (which Asset.grantRead would give).
    this.role.addToPolicy(new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: [asset.bucket.arnForObjects(asset.s3ObjectKey)],
    }));
    const profile = new iam.CfnInstanceProfile(this, 'InstanceProfile', { roles: [this.role.roleName] });

    const environment: Record<string, string> = {
      NODE_ENV: 'production',
      NODE_OPTIONS: '--enable-source-maps',
      DATA_DIR: `${SERVER_PATHS.dataDir}/data`,
      ...S.environment,
      PORT: String(S.port),
    };
    const secrets: SecretSpec[] = [];
    const database = databaseSource(this, 'Database', S.database);
    if (database !== undefined) {
      database.grant(this.role);
      if (S.database.secretId !== undefined) secrets.push({ env: 'DATABASE_URL', source: 'secretsmanager', id: S.database.secretId });
      else if (S.database.ssmParameter !== undefined) secrets.push({ env: 'DATABASE_URL', source: 'ssm', id: S.database.ssmParameter });
      else if (S.database.plainUrl !== undefined) environment.DATABASE_URL = S.database.plainUrl;
    }
    const apiKeys = apiKeysSource(this, S.apiKeysSecretId);
    if (apiKeys !== undefined && S.apiKeysSecretId !== undefined) {
      apiKeys.grant(this.role);
      secrets.push({ env: 'MLOPS_API_KEYS', source: 'secretsmanager', id: S.apiKeysSecretId });
    }

    const userData = ec2.UserData.forLinux();
    userData.addCommands(...serverUserDataLines({
      serviceName: config.serviceName,
      port: S.port,
      bucket: asset.s3BucketName,
      key: asset.s3ObjectKey,
      region: Aws.REGION,
      environment,
      secrets,
    }));
    const rendered = userData.render();
    // cloud-init runs user data only on first boot, so a changed script (new code, settings) must
    // mean a new instance: the hash goes into the logical id, as ec2.Instance's
    // userDataCausesReplacement does.
    const hash = createHash('sha256').update(JSON.stringify(this.resolve(rendered))).digest('hex').slice(0, 8);
    const burstable = /^t\d/.test(S.instanceType);

    this.instance = new ec2.CfnInstance(this, `Instance${hash}`, {
      imageId,
      instanceType: S.instanceType,
      iamInstanceProfile: profile.ref,
      securityGroupIds: [this.securityGroup.attrGroupId],
      userData: Fn.base64(rendered),
      ...(S.sshCidr !== undefined && S.keyPairName !== undefined ? { keyName: S.keyPairName } : {}),
      blockDeviceMappings: [{
        // Root device name of the Amazon Linux 2023 AMIs.
        deviceName: '/dev/xvda',
        ebs: { volumeSize: S.volumeGb, volumeType: 'gp3', encrypted: true, deleteOnTermination: true },
      }],
      metadataOptions: { httpTokens: 'required', httpEndpoint: 'enabled' },
      ...(burstable ? { creditSpecification: { cpuCredits: S.cpuCredits } } : {}),
      tags: [{ key: 'Name', value: `${config.serviceName}-server` }],
    });

    // The role's inline policy is a separate resource: make the instance wait for it so the
    // first boot can already read the bundle and the secrets.
    this.instance.node.addDependency(this.role);

    if (S.statusAlarms) {
      const metric = (metricName: string): cloudwatch.Metric => new cloudwatch.Metric({
        namespace: 'AWS/EC2',
        metricName,
        dimensionsMap: { InstanceId: this.instance.ref },
        statistic: cloudwatch.Stats.MAXIMUM,
        // Status checks are published every minute at no charge.
        period: Duration.minutes(1),
      });
      // EC2 only accepts the recover action on the system check; an instance (OS-level) failure
      // is what a reboot addresses.
      const system = new cloudwatch.Alarm(this, 'SystemStatusCheckAlarm', {
        alarmDescription: `${config.serviceName} server: system status check failed → recover the instance`,
        metric: metric('StatusCheckFailed_System'),
        threshold: 1,
        evaluationPeriods: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      });
      system.addAlarmAction(new cwActions.Ec2Action(cwActions.Ec2InstanceAction.RECOVER));
      const instanceCheck = new cloudwatch.Alarm(this, 'InstanceStatusCheckAlarm', {
        alarmDescription: `${config.serviceName} server: instance status check failed → reboot`,
        metric: metric('StatusCheckFailed_Instance'),
        threshold: 1,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      });
      instanceCheck.addAlarmAction(new cwActions.Ec2Action(cwActions.Ec2InstanceAction.REBOOT));
      if (S.alarmEmail !== undefined) {
        this.alarmTopic = new sns.Topic(this, 'AlarmTopic', { displayName: `${config.serviceName} server alarms` });
        this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(S.alarmEmail));
        for (const alarm of [system, instanceCheck]) alarm.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
        new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn, description: 'SNS topic the status alarms notify' });
      }
    }

    new CfnOutput(this, 'ServerUrl', {
      value: Fn.join('', ['http://', this.instance.attrPublicDnsName, `:${S.port}`]),
      description: 'Base URL of the service (health: /health)',
    });
    new CfnOutput(this, 'InstanceId', { value: this.instance.ref, description: 'EC2 instance id' });
    new CfnOutput(this, 'PublicIp', { value: this.instance.attrPublicIp, description: 'Public IPv4 address (changes if the instance is replaced)' });
    new CfnOutput(this, 'SessionManagerCommand', {
      value: Fn.join('', ['aws ssm start-session --target ', this.instance.ref]),
      description: 'Shell on the instance without SSH',
    });
  }
}
