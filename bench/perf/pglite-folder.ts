/** A fresh, migrated embedded database folder for benchmarks (copies a template: initdb is slow). */
export { freshPgliteDir as freshPgliteFolder } from '../../test/helpers/pglite-template.ts';
