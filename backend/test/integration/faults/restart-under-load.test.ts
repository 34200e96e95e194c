// A server restart under a steady load: 2,000 transfers between 10 accounts from 8 concurrent callers, each a
// withTransaction that moves money and writes a ledger row with its own id, and a fast-shutdown restart when half of
// them are done. Calls may fail while the server is away (the figures say how many); nothing may be lost or
// duplicated: balances sum to what they started at and match the ledger, and the ledger holds each successful
// transfer exactly once. Run twice: as 8 Lambda sandboxes (one database instance each) and as one instance shared by
// 8 concurrent requests (Lambda Managed Instances), whose single retry budget the restart drains.
// The restart cuts every session, so this file runs a PostgreSQL of its own. The figures are printed for the docs.
import crypto from 'node:crypto';
import { Client } from 'pg';
import { restartPostgresAt } from '../../../../scripts/lib/local-postgres';
import { CommitOutcomeUnknownError, createDatabase, type Database, type RetryEvent } from '../../../src/shared/db';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres';

const ACCOUNTS = 10;
const INITIAL_BALANCE = 1_000_000;
const CALLERS = 8;
const TRANSFERS = 2000;
const RESTART_AFTER = TRANSFERS / 2;
const APP_PASSWORD = crypto.randomBytes(18).toString('base64url');

interface Transfer {
  readonly id: string;
  readonly from: number;
  readonly to: number;
  readonly amount: number;
}

interface Outcome {
  readonly transfer: Transfer;
  readonly error?: unknown;
}

interface LedgerRow {
  transfer_id: string;
  from_id: number;
  to_id: number;
  amount: number;
}

/** What one run did and what the database holds afterwards. */
interface Run {
  readonly outcomes: Outcome[];
  readonly retries: RetryEvent[];
  readonly ledger: LedgerRow[];
  readonly balances: Array<{ id: number; balance: string }>;
  readonly restartMillis: number;
  readonly loadMillis: number;
}

let server: PrivatePostgres;

async function connectAdmin(database = 'postgres'): Promise<Client> {
  const client = new Client({ host: server.host, port: server.port, user: server.user, password: server.password, database, ssl: { ca: server.caPem } });
  await client.connect();
  return client;
}

beforeAll(async () => {
  server = await startPrivatePostgres();
  const admin = await connectAdmin();
  await admin.query(`CREATE ROLE bank_app LOGIN PASSWORD '${APP_PASSWORD}'`);
  await admin.query('CREATE DATABASE bank OWNER bank_app');
  await admin.end();
  const bank = await connectAdmin('bank');
  await bank.query(`
    SET ROLE bank_app;
    CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
    -- No unique constraint on purpose: a transfer committed twice must show up as a duplicate, not as an error.
    CREATE TABLE ledger (transfer_id uuid NOT NULL, from_id int NOT NULL, to_id int NOT NULL, amount int NOT NULL);
    INSERT INTO accounts SELECT id, ${INITIAL_BALANCE} FROM generate_series(1, ${ACCOUNTS}) AS id`);
  await bank.end();
}, 60_000);

beforeEach(async () => {
  const bank = await connectAdmin('bank');
  await bank.query(`TRUNCATE ledger; UPDATE accounts SET balance = ${INITIAL_BALANCE}`);
  await bank.end();
});

afterAll(async () => {
  await server?.stop();
}, 60_000);

function planTransfers(): Transfer[] {
  return Array.from({ length: TRANSFERS }, () => {
    const from = crypto.randomInt(1, ACCOUNTS + 1);
    const to = ((from + crypto.randomInt(0, ACCOUNTS - 1)) % ACCOUNTS) + 1; // any account but `from`
    return { id: crypto.randomUUID(), from, to, amount: crypto.randomInt(1, 1000) };
  });
}

/** Moves the amount and records it; rows are locked in id order so that transfers do not deadlock each other. */
function transfer(db: Database, { id, from, to, amount }: Transfer): Promise<void> {
  return db.withTransaction(async (client) => {
    for (const account of [from, to].sort((a, b) => a - b)) {
      await client.query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [account, account === from ? -amount : amount]);
    }
    await client.query('INSERT INTO ledger (transfer_id, from_id, to_id, amount) VALUES ($1, $2, $3, $4)', [id, from, to, amount]);
  });
}

/** Runs the planned transfers from CALLERS callers, each on `instances[caller % instances.length]`, restarting midway. */
async function runLoad(instanceCount: number): Promise<Run> {
  const retries: RetryEvent[] = [];
  const instances = Array.from({ length: instanceCount }, () => createDatabase({
    databaseUrl: `postgres://bank_app:${APP_PASSWORD}@${server.host}:${server.port}/bank`, sslCaFile: server.caFile,
    poolMax: Math.max(2, CALLERS / instanceCount), applicationName: 'restart-under-load', logLevel: 'silent',
    hooks: { onRetry: (event) => retries.push(event) },
  }));
  const plan = planTransfers();
  const outcomes: Outcome[] = [];
  let restartMillis = -1;
  let restarting: Promise<void> | undefined;
  let next = 0;
  const startedAt = Date.now();

  await Promise.all(Array.from({ length: CALLERS }, async (_, caller) => {
    const db = instances[caller % instances.length];
    while (next < TRANSFERS) {
      const planned = plan[next++];
      const error = await transfer(db, planned).then(() => undefined, (caught: unknown) => caught ?? new Error('rejected'));
      outcomes.push({ transfer: planned, error });
      if (outcomes.length === RESTART_AFTER) {
        const restartStartedAt = Date.now();
        restarting = restartPostgresAt(server.dataDir).then(() => void (restartMillis = Date.now() - restartStartedAt));
      }
    }
  }));
  const loadMillis = Date.now() - startedAt;
  await restarting;
  await Promise.all(instances.map((db) => db.close()));

  const admin = await connectAdmin('bank');
  const ledger = (await admin.query<LedgerRow>('SELECT transfer_id, from_id, to_id, amount FROM ledger')).rows;
  const balances = (await admin.query<{ id: number; balance: string }>('SELECT id, balance FROM accounts ORDER BY id')).rows;
  await admin.end();
  return { outcomes, retries, ledger, balances, restartMillis, loadMillis };
}

function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

/** Checks that nothing was lost or duplicated and prints the run's figures. */
function expectNothingLostOrDuplicated(label: string, run: Run): void {
  const { outcomes, retries, ledger, balances } = run;
  const inLedger = new Map<string, number>();
  for (const row of ledger) inLedger.set(row.transfer_id, (inLedger.get(row.transfer_id) ?? 0) + 1);
  const succeeded = outcomes.filter((outcome) => outcome.error === undefined);
  const failed = outcomes.filter((outcome) => outcome.error !== undefined);
  const unknown = failed.filter((outcome) => outcome.error instanceof CommitOutcomeUnknownError);
  const definite = failed.filter((outcome) => !(outcome.error instanceof CommitOutcomeUnknownError));
  const unknownThatCommitted = unknown.filter((outcome) => inLedger.has(outcome.transfer.id)).length;
  const expectedBalances = Array.from({ length: ACCOUNTS }, (_, i) => i + 1).map((id) => ({
    id, balance: String(INITIAL_BALANCE + ledger.reduce((sum, row) => sum + (row.to_id === id ? row.amount : 0) - (row.from_id === id ? row.amount : 0), 0)),
  }));
  const figures = {
    transfers: outcomes.length, succeeded: succeeded.length, failed: failed.length,
    failedBy: countBy(failed, (outcome) => (outcome.error as Error).name),
    commitOutcomeUnknown: unknown.length, unknownThatCommitted,
    retries: retries.length, retriedBy: countBy(retries, (event) => [event.errorCode, event.sqlState].filter(Boolean).join(' ')),
    restartMillis: run.restartMillis, loadMillis: run.loadMillis, transfersPerSecond: Math.round(outcomes.length / (run.loadMillis / 1000)),
    ledgerRows: ledger.length,
    duplicated: [...inLedger.values()].filter((count) => count > 1).length,
    lost: succeeded.filter((outcome) => !inLedger.has(outcome.transfer.id)).length,
  };
  console.log(`restart under load, ${label}: ${JSON.stringify(figures, null, 2)}`);

  expect(outcomes).toHaveLength(TRANSFERS);
  expect(run.restartMillis).toBeGreaterThan(0);
  expect(retries.length).toBeGreaterThan(0); // the restart did hit the load
  expect(figures.duplicated).toBe(0);
  expect(figures.lost).toBe(0);
  expect(definite.filter((outcome) => inLedger.has(outcome.transfer.id))).toEqual([]); // a definite failure wrote nothing
  expect(ledger).toHaveLength(succeeded.length + unknownThatCommitted);
  expect(balances.reduce((sum, row) => sum + Number(row.balance), 0)).toBe(ACCOUNTS * INITIAL_BALANCE);
  expect(balances).toEqual(expectedBalances);
}

describe('a server restart in the middle of a steady load of transfers', () => {
  it('loses and duplicates nothing across 8 Lambda sandboxes, each with its own database instance', async () => {
    const run = await runLoad(CALLERS);

    expectNothingLostOrDuplicated(`${CALLERS} sandboxes`, run);
  }, 60_000);

  it('loses and duplicates nothing with one instance shared by 8 concurrent requests, whose retry budget the restart drains', async () => {
    const run = await runLoad(1);

    expectNothingLostOrDuplicated(`1 instance, ${CALLERS} concurrent requests`, run);
  }, 60_000);
});
