/**
 * Bundle entry `lambda_function.mjs`, for the course's console setting `lambda_function.lambda_handler`.
 * It re-exports index.mjs (the packaging keeps `./index.ts` external), so the package has one copy.
 */
export { handler as lambda_handler } from './index.ts';
