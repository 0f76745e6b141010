// Applies the service's migrations to DATABASE_URL through the packaged Lambda's `migrate` export
// (what the CDK stack's custom resource runs), so the schema is the one of the build measured.
// argv: <package index.mjs>. Plain JS: runs without tsx, like the workers.
import { pathToFileURL } from 'node:url';

const { migrate } = await import(pathToFileURL(process.argv[2]).href);
const result = await migrate({ RequestType: 'Create' });
process.stderr.write(`MIGRATED ${JSON.stringify(result)}\n`);
process.exit(0);
