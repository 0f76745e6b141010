/** Bundle entry `lambda_function.mjs`, for the course's console setting `lambda_function.lambda_handler`. */
export { handler as lambda_handler } from './handler.ts';
