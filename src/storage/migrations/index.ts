import { sql as initial } from './0001_initial.ts';

/** Ordered list of migrations; a version is applied once, in a transaction, under a lock. */
export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  { version: 1, name: 'initial', sql: initial },
];
