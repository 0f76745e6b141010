/**
 * The PgBouncer harness (tools/shared/pgbouncer.ts) really is a transaction-mode pooler: the admin
 * console says so, clients share server connections between transactions, and session state
 * (a named prepared statement) does not follow a client to its next transaction.
 *
 * Without pgbouncer the suite is skipped loudly; under CI it fails instead.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { pgbouncerBinary, startPgBouncer, type PgBouncer } from '../tools/shared/pgbouncer.ts';
import { ADMIN_URL, skipPostgres } from './helpers/postgres.ts';
import { skipUnlessCi } from './helpers/skip.ts';

const missing = pgbouncerBinary() ? undefined : 'pgbouncer is not installed (apt-get install pgbouncer; binary /usr/sbin/pgbouncer)';
const adminUrl = ADMIN_URL;
const upstreamPort = Number(new URL(adminUrl).port || 5432);
// The harness only pools the local server.
const remote = ['127.0.0.1', 'localhost'].includes(new URL(adminUrl).hostname) ? false : 'TEST_DATABASE_URL is not on 127.0.0.1';
const skip: string | false = skipUnlessCi(missing && `the PgBouncer harness tests: ${missing}`) || skipPostgres || remote;

type Sql = postgres.Sql;
const clients: Sql[] = [];
function client(url: string, options: postgres.Options<{}> = {}): Sql {
  const sql = postgres(url, { max: 1, prepare: false, fetch_types: false, onnotice: () => {}, ...options });
  clients.push(sql);
  return sql;
}
const backendPid = async (sql: Sql | postgres.TransactionSql) => (await sql`SELECT pg_backend_pid() AS pid`)[0]!.pid as number;

/** The admin console speaks the simple query protocol only. */
async function show(pooler: PgBouncer, what: string): Promise<Record<string, unknown>[]> {
  const admin = client(`postgres://postgres@127.0.0.1:${pooler.port}/pgbouncer`);
  try {
    return [...(await admin.unsafe(`SHOW ${what}`).simple())];
  } finally {
    await admin.end();
  }
}

/**
 * Opens clients in open transactions until one of them holds the server connection with backend
 * `pid` (each one takes an idle server connection, so the one wanted is reached within a few).
 */
async function holdServer(url: string, pid: number): Promise<() => Promise<void>> {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const held: Promise<unknown>[] = [];
  const release = async () => {
    open();
    await Promise.allSettled(held);
  };
  for (let i = 0; i < 10; i++) {
    const got = await new Promise<number>((resolve, reject) => {
      held.push(
        client(url)
          .begin(async (tx) => {
            resolve(await backendPid(tx));
            await gate;
          })
          .catch(reject),
      );
    });
    if (got === pid) return release;
  }
  await release();
  throw new Error(`no client got the server connection of backend ${pid} within 10 transactions`);
}

describe('PgBouncer harness', { skip, timeout: 60_000 }, () => {
  let pooler: PgBouncer;
  let url: string;

  before(async () => {
    if (missing) throw new Error(`${missing}: required under CI`);
    pooler = await startPgBouncer({ upstreamPort });
    url = pooler.urlFor(adminUrl);
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.end({ timeout: 1 })));
    await pooler?.stop();
  });

  it('listens on loopback only and maps URLs onto itself', () => {
    assert.equal(pooler.host, '127.0.0.1');
    const u = new URL(url);
    assert.equal(u.host, `127.0.0.1:${pooler.port}`);
    assert.equal(u.pathname, new URL(adminUrl).pathname);
    assert.throws(() => pooler.urlFor('postgres://u@db.example.com:5432/x'), /not this pooler's upstream/);
  });

  it('reports pool_mode=transaction on the admin console', async () => {
    const config = Object.fromEntries((await show(pooler, 'CONFIG')).map((r) => [r.key, r.value]));
    assert.equal(config.pool_mode, 'transaction');
    assert.equal(config.listen_addr, '127.0.0.1');
    assert.equal(config.ignore_startup_parameters, 'extra_float_digits');
    await backendPid(client(url)); // makes sure the pool of this database exists
    const pool = (await show(pooler, 'POOLS')).find((p) => p.database === new URL(url).pathname.slice(1));
    assert.equal(pool?.pool_mode, 'transaction');
  });

  it('serves two clients from one server connection, one transaction at a time', async () => {
    const a = client(url);
    const b = client(url);
    const first = await backendPid(a);
    // b's transaction starts after a's ended: it gets the same server connection (idle ones are
    // reused most recent first), although a is still connected. Session mode would not share it.
    assert.equal(await backendPid(b), first);
    assert.equal(await backendPid(a), first);
  });

  it('loses a named prepared statement when the next transaction lands elsewhere; prepare:false works', async () => {
    const a = client(url);
    const pid = await a.begin(async (tx) => {
      await tx.unsafe('PREPARE harness_stmt AS SELECT 42 AS answer');
      return backendPid(tx);
    });
    const release = await holdServer(url, pid);
    try {
      await assert.rejects(a.unsafe('EXECUTE harness_stmt'), (e: postgres.PostgresError) => {
        assert.equal(e.code, '26000', e.message); // invalid_sql_statement_name
        assert.match(e.message, /prepared statement "harness_stmt" does not exist/);
        return true;
      });
      const [row] = await a`SELECT ${41}::int + 1 AS answer`;
      assert.equal(row!.answer, 42);
    } finally {
      await release();
    }
  });

  it('breaks postgres.js named statements (prepare:true) inside a transaction on another server connection', async () => {
    const p = client(url, { prepare: true });
    const query = (sql: Sql | postgres.TransactionSql) => sql`SELECT pg_backend_pid() AS pid, ${7}::int AS x`;
    const [first] = await query(p); // parsed as a named statement on this server connection only
    const release = await holdServer(url, first!.pid as number);
    try {
      // postgres.js re-prepares once when the statement is missing, but the transaction is
      // already aborted by then, so the original error surfaces.
      await assert.rejects(
        p.begin((tx) => query(tx)),
        (e: postgres.PostgresError) => (assert.equal(e.code, '26000', e.message), true),
      );
    } finally {
      await release();
    }
  });

  it('rejects startup parameters it does not know, ignoring only extra_float_digits', async () => {
    const [row] = await client(url, { connection: { extra_float_digits: 2 } })`SELECT current_setting('extra_float_digits') AS v`;
    assert.equal(row!.v, '1', 'an ignored startup parameter is dropped, not forwarded'); // server default
    for (const connection of [{ statement_timeout: 5000 }, { plan_cache_mode: 'force_generic_plan' }]) {
      const name = Object.keys(connection)[0]!;
      await assert.rejects(
        client(url, { connection, connect_timeout: 3 })`SELECT 1`,
        (e: postgres.PostgresError) => (assert.equal(e.code, '08P01'), assert.match(e.message, new RegExp(`unsupported startup parameter: ${name}`)), true),
      );
    }
  });

  it('runs in session mode when asked (control: each client keeps its server connection)', async () => {
    const session = await startPgBouncer({ upstreamPort, poolMode: 'session' });
    try {
      const config = Object.fromEntries((await show(session, 'CONFIG')).map((r) => [r.key, r.value]));
      assert.equal(config.pool_mode, 'session');
      const sUrl = session.urlFor(adminUrl);
      const a = client(sUrl);
      const b = client(sUrl);
      const first = await backendPid(a);
      assert.notEqual(await backendPid(b), first);
      assert.equal(await backendPid(a), first);
      await Promise.all([a.end(), b.end()]);
    } finally {
      await session.stop();
    }
  });
});
