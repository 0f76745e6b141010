/**
 * DATABASE_URL → postgres.js: what each libpq `sslmode` (and Neon's `channel_binding=require`)
 * becomes. Beyond the parsed options, every mode is checked on the wire against a stand-in
 * PostgreSQL on 127.0.0.1 that records what the driver sends first (an SSLRequest or a plain
 * StartupMessage), offers or declines TLS with a self-signed certificate, and reads the startup
 * parameters: so the test sees what the service really does, not what its options say.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TLSSocket } from 'node:tls';
import { createPostgresExecutor, parseDatabaseUrl } from '../../src/storage/postgres.ts';

// Self-signed, CN and SAN localhost, valid until 2126: no client may trust it unless told to.
const CERT = `-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUGDOSO/lif9NYIi5phN1iQriuvxYwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMjA2MDkwOFoYDzIxMjYxMTA4
MDYwOTA4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARqoWLRK9Q7++oEhysCr+VZYwjIjIOPMOA06HvoxV9b3mhEDHOnRLzr
SZ8JylFJpHqHBtczlh6M21wjcg1rT1S7o2kwZzAdBgNVHQ4EFgQUXwWS65F6WXwe
PNAfRuwVDH4BqAAwHwYDVR0jBBgwFoAUXwWS65F6WXwePNAfRuwVDH4BqAAwDwYD
VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
SAAwRQIgLTy7OZbOymyKIGP4WIX6+0fg7VlqlweerczpJJ9H2LoCIQCfQppF6QGb
esBCbYGmkzvmlX1quC+lr/P2Zt9otc5a+Q==
-----END CERTIFICATE-----`;
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQglVEspFMBz1sDvVHK
aVYUM7LiJI4SnA9mSp1EM3vzo+uhRANCAARqoWLRK9Q7++oEhysCr+VZYwjIjIOP
MOA06HvoxV9b3mhEDHOnRLzrSZ8JylFJpHqHBtczlh6M21wjcg1rT1S7
-----END PRIVATE KEY-----`;

/** libpq-only parameters: none may reach the server as a startup setting (it would refuse them). */
const LIBPQ_PARAMS = ['sslmode', 'channel_binding', 'sslrootcert', 'sslcert', 'sslkey', 'sslnegotiation', 'connect_timeout', 'target_session_attrs', 'ssl'];

const SSL_REQUEST_CODE = 80877103;
const PROTOCOL_3 = 196608;

/** What one client connection did. */
interface Seen {
  sslRequested: boolean;
  /** The startup message arrived over TLS. */
  tls: boolean;
  /** Startup parameters (user, database, application_name…); undefined if none arrived. */
  startup?: Record<string, string>;
  /** The TLS handshake failed or the client hung up during it (it refused our certificate). */
  tlsRefused: boolean;
  /** Bytes that were no startup packet arrived in plain text (closed, as PostgreSQL does). */
  garbage?: boolean;
  /** The TLS ServerName (SNI) the client sent; false when it sent none. */
  serverName?: string | false;
}

/**
 * A stand-in PostgreSQL: answers an SSLRequest with `S` (then TLS with the self-signed
 * certificate) or `N`, reads the StartupMessage, and ends every connection with a FATAL error, so
 * the client gives up without a real server behind it.
 */
class FakePostgres {
  readonly seen: Seen[] = [];
  offerTls = true;
  #server: Server;
  #waiters: Array<() => void> = [];
  port = 0;

  constructor() {
    this.#server = createServer((socket) => this.#accept(socket));
  }

  async start(): Promise<void> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.port = (this.#server.address() as AddressInfo).port;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  reset(offerTls: boolean): void {
    this.seen.length = 0;
    this.offerTls = offerTls;
  }

  /** Resolves once the first connection is over (startup read, or TLS refused). */
  firstDone(): Promise<Seen> {
    const done = () => this.seen[0] && (this.seen[0].startup || this.seen[0].tlsRefused || this.seen[0].garbage);
    if (done()) return Promise.resolve(this.seen[0]!);
    return new Promise((resolve) => this.#waiters.push(() => done() && resolve(this.seen[0]!)));
  }

  #notify(): void {
    for (const w of this.#waiters) w();
  }

  #accept(raw: Socket): void {
    const seen: Seen = { sslRequested: false, tls: false, tlsRefused: false };
    this.seen.push(seen);
    raw.on('error', () => {});
    let buffered = Buffer.alloc(0);
    const onPlain = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 8) return;
      const length = buffered.readInt32BE(0);
      if (length === 8 && buffered.readInt32BE(4) === SSL_REQUEST_CODE && !seen.sslRequested) {
        seen.sslRequested = true;
        buffered = buffered.subarray(8);
        if (this.offerTls) {
          raw.off('data', onPlain);
          raw.write('S');
          this.#startTls(raw, seen);
        } else {
          raw.write('N');
        }
        return;
      }
      // What PostgreSQL does with anything that is not a startup packet (e.g. a TLS ClientHello
      // after it said N): closes the connection.
      if (length < 8 || length > 10_000) {
        seen.garbage = true;
        raw.destroy();
        this.#notify();
        return;
      }
      if (buffered.length >= length) this.#startup(raw, buffered.subarray(0, length), seen);
    };
    raw.on('data', onPlain);
  }

  #startTls(raw: Socket, seen: Seen): void {
    const tls = new TLSSocket(raw, { isServer: true, key: KEY, cert: CERT });
    let secured = false;
    tls.once('secure', () => {
      secured = true;
      seen.serverName = tls.servername ?? false;
    });
    const refused = () => {
      if (secured || seen.startup) return;
      seen.tlsRefused = true;
      this.#notify();
    };
    tls.on('error', refused);
    tls.on('close', refused);
    let buffered = Buffer.alloc(0);
    tls.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 4 && buffered.length >= buffered.readInt32BE(0)) {
        seen.tls = true;
        this.#startup(tls, buffered.subarray(0, buffered.readInt32BE(0)), seen);
      }
    });
  }

  #startup(socket: Socket, message: Buffer, seen: Seen): void {
    if (seen.startup) return;
    if (message.readInt32BE(4) !== PROTOCOL_3) {
      seen.garbage = true;
      socket.destroy();
      this.#notify();
      return;
    }
    const parts = message.subarray(8).toString('utf8').split('\0');
    const params: Record<string, string> = {};
    for (let i = 0; i + 1 < parts.length && parts[i]; i += 2) params[parts[i]!] = parts[i + 1]!;
    seen.startup = params;
    // ErrorResponse: severity FATAL, SQLSTATE 08004 (server rejected the connection).
    const fields = Buffer.from('SFATAL\0C08004\0Mfake server: connection recorded\0\0', 'utf8');
    const header = Buffer.alloc(5);
    header.write('E', 0);
    header.writeInt32BE(4 + fields.length, 1);
    socket.end(Buffer.concat([header, fields]));
    this.#notify();
  }
}

/** Connects through the service's own executor with this URL; resolves with what the server saw. */
async function connectWith(fake: FakePostgres, query: string, offerTls: boolean): Promise<{ seen: Seen; error: Error }> {
  fake.reset(offerTls);
  const url = `postgres://mlops:secret@127.0.0.1:${fake.port}/metrics${query}`;
  const { executor } = createPostgresExecutor({ url, poolMax: 1, connectTimeoutMs: 5000, statementTimeoutMs: 5000 });
  try {
    const error = await executor.query('SELECT 1').then(
      () => assert.fail('the stand-in server never accepts a connection'),
      (e: Error) => e,
    );
    return { seen: await fake.firstDone(), error };
  } finally {
    await executor.close().catch(() => {});
  }
}

const plainStartup = (seen: Seen) => {
  assert.ok(seen.startup, 'the StartupMessage arrived');
  assert.equal(seen.tls, false);
  for (const p of LIBPQ_PARAMS) assert.equal(seen.startup![p], undefined, `${p} sent to the server as a setting`);
};
const tlsStartup = (seen: Seen) => {
  assert.equal(seen.sslRequested, true, 'asked for TLS first');
  assert.equal(seen.tlsRefused, false, 'completed the TLS handshake');
  assert.equal(seen.tls, true, 'sent the StartupMessage inside TLS');
  for (const p of LIBPQ_PARAMS) assert.equal(seen.startup![p], undefined, `${p} sent to the server as a setting`);
};
const refusedCertificate = ({ seen, error }: { seen: Seen; error: Error }) => {
  assert.equal(seen.sslRequested, true, 'asked for TLS first');
  assert.equal(seen.tlsRefused, true, 'hung up in the handshake');
  assert.equal(seen.startup, undefined, 'sent nothing (no password exchange) to an unverified server');
  assert.match(`${(error as { code?: string }).code} ${error.message}`, /SELF_SIGNED|self[- ]signed/i);
};

describe('DATABASE_URL sslmode on the wire (stand-in server on 127.0.0.1)', () => {
  const fake = new FakePostgres();
  before(() => fake.start());
  after(() => fake.stop());

  it('disable: a plain StartupMessage, never an SSLRequest, even when the server offers TLS', async () => {
    const { seen } = await connectWith(fake, '?sslmode=disable', true);
    assert.equal(seen.sslRequested, false);
    plainStartup(seen);
  });

  it('allow: connects whether or not the server offers TLS, never refusing its certificate', async () => {
    const offered = await connectWith(fake, '?sslmode=allow', true);
    assert.ok(offered.seen.startup, `no StartupMessage: ${offered.error.message}`);
    assert.equal(offered.seen.tlsRefused, false);
    const declined = await connectWith(fake, '?sslmode=allow', false);
    plainStartup(declined.seen);
  });

  it('prefer: TLS without verification when offered; plain text on the same connection when declined', async () => {
    tlsStartup((await connectWith(fake, '?sslmode=prefer', true)).seen);
    const declined = await connectWith(fake, '?sslmode=prefer', false);
    assert.equal(declined.seen.sslRequested, true, 'asked for TLS first');
    plainStartup(declined.seen);
  });

  it('no sslmode (libpq default prefer): asks for TLS first, plain text when declined', async () => {
    tlsStartup((await connectWith(fake, '', true)).seen);
    const declined = await connectWith(fake, '', false);
    assert.equal(declined.seen.sslRequested, true, 'asked for TLS first');
    plainStartup(declined.seen);
  });

  for (const mode of ['require', 'verify-ca', 'verify-full']) {
    it(`${mode}: refuses a certificate no trusted authority signed, before sending any credential`, async () => {
      refusedCertificate(await connectWith(fake, `?sslmode=${mode}`, true));
    });
    it(`${mode}: fails when the server declines TLS instead of going on in plain text`, async () => {
      const { seen, error } = await connectWith(fake, `?sslmode=${mode}`, false);
      assert.equal(seen.sslRequested, true);
      assert.equal(fake.seen.some((s) => s.startup), false, `a StartupMessage went out in plain text (${error.message})`);
    });
  }

  it('no-verify: TLS, and accepts the self-signed certificate', async () => {
    tlsStartup((await connectWith(fake, '?sslmode=no-verify', true)).seen);
  });

  it("Neon's channel_binding=require and other libpq-only parameters never reach the server as settings", async () => {
    const { seen } = await connectWith(fake, '?sslmode=no-verify&channel_binding=require&connect_timeout=10&target_session_attrs=read-write&sslnegotiation=postgres', true);
    tlsStartup(seen);
    assert.equal(seen.startup!.user, 'mlops');
    assert.equal(seen.startup!.database, 'metrics');
    assert.equal(seen.startup!.application_name, 'mlops-service');
  });

  it('an IP host gets no TLS ServerName (RFC 6066 forbids one; Node warns DEP0123 and will drop it)', async () => {
    const { seen } = await connectWith(fake, '?sslmode=no-verify', true);
    tlsStartup(seen);
    assert.equal(seen.serverName, false, `sent ServerName ${seen.serverName}`);
  });
});

describe('parseDatabaseUrl', () => {
  const REMOTE = 'postgresql://u:p%40ss@db.example.com:6543/app';
  const NEON = 'postgresql://u:p@ep-cool-1-pooler.us-east-1.aws.neon.tech/neondb';

  it('strips every libpq-only parameter from the connection string and keeps the others', () => {
    const all = LIBPQ_PARAMS.map((p) => `${p}=x`).join('&');
    const parsed = parseDatabaseUrl(`${REMOTE}?${all}&options=-c%20search_path%3Dmlops`);
    const url = new URL(parsed.connectionString);
    assert.deepEqual([...url.searchParams.keys()], ['options']);
    assert.equal(decodeURIComponent(url.password), 'p@ss', 'the password survives encoded');
    assert.equal(url.port, '6543');
  });

  it('verified TLS for require, verify-ca, verify-full, ssl=true, and a Neon host without sslmode', () => {
    for (const url of [`${REMOTE}?sslmode=require`, `${REMOTE}?sslmode=verify-ca`, `${REMOTE}?sslmode=verify-full`, `${REMOTE}?ssl=true`, NEON, `${NEON}?channel_binding=require`]) {
      const { ssl, description } = parseDatabaseUrl(url);
      assert.equal(typeof ssl, 'object', url);
      assert.equal((ssl as { rejectUnauthorized: boolean }).rejectUnauthorized, true, url);
      assert.match(description, /\(TLS\)$/, url);
    }
  });

  it('no-verify: TLS without certificate checks; disable and ssl=false: no TLS at all', () => {
    const noVerify = parseDatabaseUrl(`${REMOTE}?sslmode=no-verify`).ssl;
    assert.equal((noVerify as { rejectUnauthorized: boolean }).rejectUnauthorized, false);
    assert.equal(parseDatabaseUrl(`${NEON}?sslmode=disable`).ssl, false);
    assert.equal(parseDatabaseUrl(`${REMOTE}?ssl=false`).ssl, false, 'ssl=false asks for no TLS');
  });

  it('describes the target without credentials', () => {
    const { description } = parseDatabaseUrl(`${REMOTE}?sslmode=verify-full`);
    assert.equal(description, 'db.example.com:6543/app (TLS)');
  });
});
