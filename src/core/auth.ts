/**
 * API keys: `X-API-Key: <key>` or `Authorization: Bearer <key>`. Keys are compared as SHA-256
 * digests with `timingSafeEqual` (equal lengths, no early exit), against every configured key,
 * so timing reveals neither a key nor which one matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from './http-errors.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

export interface KeyRing {
  readonly enabled: boolean;
  /** Returns the matching key's index (for rate limits and logs, never the key itself). */
  check(presented: string | undefined): number;
  /** Whether a credential matches, without an error for a missing or wrong one. */
  accepts(presented: string | undefined): boolean;
}

export function createKeyRing(keys: readonly string[], what = 'API key'): KeyRing {
  const digests = keys.map(digest);
  const find = (presented: string): number => {
    const candidate = digest(presented);
    let match = -1;
    digests.forEach((d, i) => {
      if (timingSafeEqual(d, candidate) && match === -1) match = i;
    });
    return match;
  };
  return {
    enabled: digests.length > 0,
    check(presented) {
      if (presented === undefined || presented === '') {
        throw new ApiError(401, 'unauthorized', `${what} required: send it as X-API-Key or Authorization: Bearer <key>`, undefined, {
          'WWW-Authenticate': 'Bearer',
        });
      }
      const match = find(presented);
      if (match === -1) throw new ApiError(403, 'forbidden', `Invalid ${what}`);
      return match;
    },
    accepts: (presented) => presented !== undefined && presented !== '' && find(presented) !== -1,
  };
}

/** The credential a request carries, from either header. */
export function presentedKey(header: (name: string) => string | undefined): string | undefined {
  const apiKey = header('x-api-key');
  if (apiKey) return apiKey.trim();
  const auth = header('authorization');
  const match = auth ? /^Bearer\s+(.+)$/i.exec(auth.trim()) : null;
  return match ? match[1]!.trim() : undefined;
}
