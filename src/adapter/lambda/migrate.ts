/**
 * Migrations as a CloudFormation custom resource (the CDK stack runs this once per deploy, against
 * the direct, non-pooler URL), so cold starts never race to migrate.
 */
import { loadConfig } from '../../core/config.ts';
import { resolveDatabaseUrl } from './database.ts';

interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  PhysicalResourceId?: string;
}

const PHYSICAL_ID = 'mlops-service-migrations';

export async function migrate(event: CustomResourceEvent) {
  if (event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId ?? PHYSICAL_ID };
  const config = loadConfig(process.env, { dbPoolMax: 1 });
  const url = await resolveDatabaseUrl(process.env, config);
  const { openPostgresStore } = await import('../../storage/postgres.ts');
  const store = openPostgresStore({ url, poolMax: 1, connectTimeoutMs: 10_000, statementTimeoutMs: 120_000, applicationName: 'mlops-service-migrate' });
  try {
    const { applied } = await store.migrate();
    console.log(JSON.stringify({ level: 'info', msg: 'migrations applied', applied }));
    return { PhysicalResourceId: PHYSICAL_ID, Data: { Applied: applied.join(',') || 'none' } };
  } finally {
    await store.close();
  }
}
