/** Bundle entry `index.mjs`: handler `index.handler`; migrations `index.migrate`. */
export { handler } from './handler.ts';
export { migrate } from './migrate.ts';
