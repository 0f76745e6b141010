/**
 * The CDK app: the Lambda stack and the EC2 stack, deployable independently
 * (`cdk deploy MlopsLambdaStack` / `cdk deploy MlopsServerStack`; see infra/README.md).
 * Environment-agnostic unless `account`/`region` are configured.
 */
import { Annotations, App, type Environment } from 'aws-cdk-lib';
import { ConfigError, loadConfig, stackNames } from '../config.ts';
import { MlopsLambdaStack } from '../lib/lambda-stack.ts';
import { MlopsServerStack } from '../lib/server-stack.ts';

const app = new App();

let loaded;
try {
  loaded = loadConfig({ context: app.node.getAllContext() });
} catch (e) {
  if (e instanceof ConfigError) {
    // A short message beats a stack trace for a typo in a setting.
    console.error(e.message);
    process.exit(1);
  }
  throw e;
}
const { config, warnings } = loaded;

const env: Environment | undefined = config.account !== undefined || config.region !== undefined
  ? { ...(config.account !== undefined ? { account: config.account } : {}), ...(config.region !== undefined ? { region: config.region } : {}) }
  : undefined;
const names = stackNames(config);

// Construct ids are fixed so the npm scripts can always select the stacks by name;
// stackName is what CloudFormation shows and can be changed by configuration.
const lambdaStack = new MlopsLambdaStack(app, 'MlopsLambdaStack', { config, stackName: names.lambda, ...(env ? { env } : {}) });
const serverStack = new MlopsServerStack(app, 'MlopsServerStack', { config, stackName: names.server, ...(env ? { env } : {}) });

for (const w of warnings) {
  const stack = w.startsWith('server.') ? serverStack : lambdaStack;
  Annotations.of(stack).addWarningV2(`@mlops/config-${w.split(':')[0]}`, w);
}

app.synth();
