/**
 * Text PostgreSQL can store. A `text` or `jsonb` value may not hold U+0000, and a lone UTF-16
 * surrogate has no UTF-8 form: PostgreSQL refuses the first (SQLSTATE 22021/22P05) and the
 * drivers silently turn the second into U+FFFD, so the stored value would differ from the one
 * acknowledged. Both are refused at the edge, with the field named, before anything is stored.
 */

/** Why `value` cannot be stored as text, or undefined when it can. */
export function textProblem(value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain a NUL character (U+0000)';
  // String.prototype.isWellFormed (ES2024, Node 20+): false when a surrogate has no partner.
  if (!(value as string & { isWellFormed(): boolean }).isWellFormed()) return 'must be valid Unicode (it holds a lone surrogate)';
  return undefined;
}

export const isStorableText = (value: string): boolean => textProblem(value) === undefined;
