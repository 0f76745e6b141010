/**
 * Reads secrets through the AWS Parameters and Secrets Lambda Extension (an HTTP endpoint on
 * localhost that caches values), so the bundle needs no AWS SDK. The CDK stack adds the layer.
 */
export interface SecretSources {
  secretId?: string;
  ssmParameter?: string;
}

const port = () => process.env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT ?? '2773';

async function extensionGet(path: string): Promise<any> {
  const token = process.env.AWS_SESSION_TOKEN;
  if (!token) throw new Error('AWS_SESSION_TOKEN is not set: secrets can only be read inside Lambda');
  const response = await fetch(`http://localhost:${port()}${path}`, {
    headers: { 'X-Aws-Parameters-Secrets-Token': token },
    signal: AbortSignal.timeout(3000),
  });
  if (!response.ok) {
    throw new Error(`the Parameters and Secrets extension answered ${response.status}: is its layer attached and may the function read the value?`);
  }
  return response.json();
}

/** A Secrets Manager secret holding the value itself, or JSON with the named key. */
export async function readSecret(secretId: string, jsonKey: string): Promise<string> {
  const doc = await extensionGet(`/secretsmanager/get?secretId=${encodeURIComponent(secretId)}`);
  const raw: unknown = doc?.SecretString;
  if (typeof raw !== 'string' || raw === '') throw new Error(`secret ${secretId} has no SecretString`);
  if (raw.trim().startsWith('{')) {
    const value = (JSON.parse(raw) as Record<string, unknown>)[jsonKey];
    if (typeof value !== 'string') throw new Error(`secret ${secretId} is JSON without a "${jsonKey}" string`);
    return value;
  }
  return raw.trim();
}

export async function readParameter(name: string): Promise<string> {
  const doc = await extensionGet(`/systemsmanager/parameters/get?name=${encodeURIComponent(name)}&withDecryption=true`);
  const value: unknown = doc?.Parameter?.Value;
  if (typeof value !== 'string' || value === '') throw new Error(`parameter ${name} has no value`);
  return value.trim();
}
