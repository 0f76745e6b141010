/**
 * Reads secrets through the AWS Parameters and Secrets Lambda Extension (an HTTP endpoint on
 * localhost that caches values), so the bundle needs no AWS SDK. The CDK stack adds the layer.
 *
 * A read can fail for a while (the extension still starting, Secrets Manager throttling, a policy
 * being fixed): `CachedSecret` keeps a value once read, and tries a failed read again on a later
 * call, with backoff, instead of failing for the life of the environment. The extension itself
 * caches values for up to SECRETS_MANAGER_TTL / SSM_PARAMETER_STORE_TTL (300 s by default).
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

export interface SecretBackoff {
  /** Wait after the first failed read before the next one is attempted. */
  firstMs: number;
  /** Upper bound of the wait, which doubles with each failure in a row. */
  maxMs: number;
}

const DEFAULT_SECRET_BACKOFF: SecretBackoff = { firstMs: 1000, maxMs: 60_000 };

/**
 * A value read once and kept for the environment's life. A failed read is answered with its error
 * and attempted again by a later `get()`, but no sooner than the backoff: calls in between fail at
 * once with the last error, so a failing extension is not asked (and waited for) on every request.
 * `refresh()` reads again even when a value is kept: after the database refused credentials taken
 * from this value, which a rotation may have changed.
 */
export class CachedSecret {
  readonly #read: () => Promise<string>;
  readonly #backoff: SecretBackoff;
  #value: string | undefined;
  #reading: Promise<string> | undefined;
  #failures = 0;
  #retryAt = 0;
  #lastError: Error | undefined;

  constructor(read: () => Promise<string>, backoff: SecretBackoff = DEFAULT_SECRET_BACKOFF) {
    this.#read = read;
    this.#backoff = backoff;
  }

  get(): Promise<string> {
    return this.#value !== undefined ? Promise.resolve(this.#value) : this.#readNow();
  }

  refresh(): Promise<string> {
    return this.#readNow();
  }

  /** Concurrent callers share one read. */
  #readNow(): Promise<string> {
    if (this.#reading) return this.#reading;
    const wait = this.#retryAt - Date.now();
    if (wait > 0 && this.#lastError) {
      return Promise.reject(
        new Error(`${this.#lastError.message} (failed ${this.#failures} times in a row; next attempt in ${Math.ceil(wait / 1000)} s)`, {
          cause: this.#lastError,
        }),
      );
    }
    this.#reading = this.#read().then(
      (value) => {
        this.#value = value;
        this.#failures = 0;
        this.#lastError = undefined;
        return value;
      },
      (error: unknown) => {
        this.#failures++;
        this.#lastError = error instanceof Error ? error : new Error(String(error));
        this.#retryAt = Date.now() + Math.min(this.#backoff.maxMs, this.#backoff.firstMs * 2 ** (this.#failures - 1));
        throw error;
      },
    ).finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }
}

/** API keys kept in a secret: a comma list, or JSON with an `MLOPS_API_KEYS` comma list. */
export function apiKeysFromSecret(secretId: string): { get(): Promise<string[]> } {
  const secret = new CachedSecret(() => readSecret(secretId, 'MLOPS_API_KEYS'));
  return {
    get: async () =>
      (await secret.get())
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean),
  };
}
