/**
 * `npm start`: reads the environment, starts the server, and shuts down cleanly on SIGTERM/SIGINT:
 * exit 0 once every in-flight request was answered, 1 when SHUTDOWN_TIMEOUT_MS passed first and
 * requests were cut off (logged), so a supervisor can tell a clean stop from a lossy one.
 */
import { ConfigError, loadConfig } from '../../core/config.ts';
import { batchedSink, createLogger } from '../../core/logger.ts';
import { StoreStartupError, StoreUnavailableError } from '../../storage/errors.ts';
import { startServer } from './server.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`mlops-service: ${error.message}\nSee .env.example for every setting.\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel, { service: 'mlops-service' }, batchedSink());
  let server;
  try {
    server = await startServer(config, logger);
  } catch (error) {
    // By name: importing PriceTableError would load the price table at every start, PRICES_FILE or not.
    const known = error instanceof StoreStartupError || error instanceof StoreUnavailableError || (error as Error).name === 'PriceTableError';
    const message = known ? (error as Error).message : `could not start: ${(error as Error).message}`;
    logger.error(message, known ? {} : { err: error });
    if (error instanceof StoreUnavailableError && config.databaseUrl) {
      process.stderr.write('Check that DATABASE_URL points at a running PostgreSQL server that accepts connections.\n');
    }
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    server.close().then(
      ({ abandoned }) => {
        if (abandoned.length) {
          logger.error('stopped after abandoning requests in flight', { abandoned: abandoned.length });
          process.exit(1);
        }
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error('error while stopping', { err: error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
