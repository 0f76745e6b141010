import { sql as initial } from './0001_initial.ts';
import { sql as appendOnlyIngest } from './0002_append_only_ingest.ts';
import { sql as pricedTokensGenai } from './0003_priced_tokens_genai.ts';

/** Ordered list of migrations; a version is applied once, in a transaction, under a lock. */
export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  { version: 1, name: 'initial', sql: initial },
  { version: 2, name: 'append_only_ingest', sql: appendOnlyIngest },
  { version: 3, name: 'priced_tokens_genai', sql: pricedTokensGenai },
];
