// Secrets Manager failing must not take the database down with it. Credentials are cached (TTL, single-flight); a
// throttled refresh is retried by the SDK itself; a refresh that fails outright keeps serving the last good secret
// for a grace period, to pooled and new connections alike. A password rotation in the middle of a load costs no
// query: sessions already open stay logged in, and a new one rejected with 28P01 refreshes the secret, reading
// AWSPENDING while the database already has the new password but AWSCURRENT does not yet.
import { setTimeout as delay } from 'node:timers/promises';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../../../scripts/lib/local-secrets-manager';
import { CredentialsError, type CredentialsRefreshEvent, type Database, type DbOptions } from '../../../src/shared/db';
import { setRolePassword, terminateBackends, testServer } from '../support/postgres';
import { createFaultDatabase, databaseTracker, rejectionOf, waitUntil, type FaultDatabase } from './support';

// Real waits (TTLs, deadlines, timeouts) on a busy machine: allow more than Jest's default 5 s a test.
jest.setTimeout(20_000);

const TTL_MILLIS = 1000;

let fault: FaultDatabase;
let secrets: LocalSecretsManager;
const savedEnv = { ...process.env };
const databases = databaseTracker();

beforeAll(async () => {
  fault = await createFaultDatabase('secrets');
  await fault.asOwner('CREATE TABLE ledger (caller int NOT NULL, seq int NOT NULL, PRIMARY KEY (caller, seq))');
  secrets = await startLocalSecretsManager();
  // The real SDK, created by the module itself, finds the local endpoint the way it would find a VPC endpoint.
  Object.assign(process.env, { AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
});

afterEach(async () => {
  secrets.setFailure(null);
  await databases.closeAll();
});

afterAll(async () => {
  process.env = savedEnv;
  await secrets?.close();
  await fault?.drop();
});

/** A database instance reading `secretId`, which is created with the role's current password. */
function openWithSecret(secretId: string, options: DbOptions = {}): Database {
  secrets.putSecretValue(secretId, fault.secretString());
  return databases.open({ secretId, sslCaFile: testServer().caFile, logLevel: 'silent', applicationName: secretId, ...options });
}

async function burst(db: Database, size: number): Promise<unknown[]> {
  const outcomes = await Promise.allSettled(Array.from({ length: size }, (_, n) => db.query('SELECT $1::int AS n', [n])));
  return outcomes.filter((outcome) => outcome.status === 'rejected').map((outcome) => (outcome as PromiseRejectedResult).reason);
}

describe('after the credentials TTL', () => {
  it('rides out throttling: the SDK retries inside one single-flight refresh and every query succeeds', async () => {
    const db = openWithSecret('throttled', { credentialsTtlMillis: TTL_MILLIS });
    await db.query('SELECT 1');
    await delay(TTL_MILLIS + 200);
    secrets.resetCalls();
    secrets.failNext(2, 'ThrottlingException');

    const failed = await burst(db, 20);

    expect(failed).toEqual([]);
    expect(secrets.calls.map((call) => call.secretId)).toEqual(['throttled', 'throttled', 'throttled']);
  });

  it('serves the cached secret through an outage, to pooled and new connections alike', async () => {
    const db = openWithSecret('outage', { credentialsTtlMillis: TTL_MILLIS, poolMax: 2 });
    const pidBefore = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await delay(TTL_MILLIS + 200);
    secrets.setFailure('InternalServiceError');
    secrets.resetCalls();

    const failedOnPooled = await burst(db, 10);
    await terminateBackends({ applicationName: 'outage' });
    const pidAfter = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const failedOnNew = await burst(db, 10);

    expect(failedOnPooled).toEqual([]);
    expect(failedOnNew).toEqual([]);
    expect(pidAfter).not.toBe(pidBefore);
    expect(secrets.calls.length).toBeGreaterThanOrEqual(1); // it did try
  });

  it('fails with CredentialsError, without a retry, once the grace period is over too', async () => {
    const db = openWithSecret('outage-beyond-grace', { credentialsTtlMillis: TTL_MILLIS, credentialsGraceMillis: 0 });
    await db.query('SELECT 1');
    await delay(TTL_MILLIS + 200);
    secrets.setFailure('InternalServiceError');

    const error = await rejectionOf(db.query('SELECT 1'));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error).toMatchObject({ attempts: 1 });
    expect((error as Error).message).toContain('outage-beyond-grace');
  });
});

describe('a password rotation in the middle of a load', () => {
  it('fails no query: open sessions keep working, new ones pick up AWSPENDING, and the promoted secret works', async () => {
    const refreshes: CredentialsRefreshEvent[] = [];
    const db = openWithSecret('rotation', { poolMax: 4, hooks: { onCredentialsRefresh: (event) => refreshes.push(event) } });
    const failures: unknown[] = [];
    let completed = 0;
    let written = 0;
    let killed = 0;
    let stop = false;
    const rotation = (async () => {
      await waitUntil(async () => completed >= 150, 'the load is under way');
      // AWS rotation: createSecret stores AWSPENDING, setSecret changes the database, finishSecret promotes it.
      secrets.putSecretValue('rotation', fault.secretString('rotated-password'), ['AWSPENDING']);
      await setRolePassword(fault.role, 'rotated-password');
      killed = await terminateBackends({ applicationName: 'rotation' }); // new sessions must log in with the new password
      const atKill = completed;
      await waitUntil(async () => completed >= atKill + 200, 'the load went on with AWSPENDING');
      secrets.promotePending('rotation');
      const atPromotion = completed;
      await waitUntil(async () => completed >= atPromotion + 100, 'the load went on after the promotion');
      stop = true;
    })();

    await Promise.all(Array.from({ length: 4 }, async (_, caller) => {
      for (let seq = 0; !stop; seq++) {
        try {
          if (seq % 2 === 0) {
            await db.withTransaction((client) => client.query('INSERT INTO ledger (caller, seq) VALUES ($1, $2)', [caller, seq]));
            written += 1;
          } else {
            await db.query('SELECT count(*)::int AS n FROM ledger', [], { idempotent: true });
          }
        } catch (error) {
          failures.push(error);
        }
        completed += 1;
      }
    }));
    await rotation;
    const afterRotation = databases.open({ secretId: 'rotation', sslCaFile: testServer().caFile, logLevel: 'silent' });
    const { rows } = await afterRotation.query('SELECT count(*)::int AS n FROM ledger'); // with the promoted AWSCURRENT

    expect(failures).toEqual([]);
    expect(killed).toBeGreaterThanOrEqual(1);
    // A new session was refused the old password (28P01), and the forced refresh found the new one in AWSPENDING.
    expect(refreshes).toContainEqual(expect.objectContaining({ reason: 'rejected', ok: true }));
    expect(secrets.calls.some((call) => call.secretId === 'rotation' && call.versionStage === 'AWSPENDING')).toBe(true);
    expect(rows[0].n).toBe(written);
  });
});
