/** Fresh embedded-database folders for tests (shared with the benchmarks). */
export { freshPgliteDir } from '../../tools/shared/pglite-template.ts';
