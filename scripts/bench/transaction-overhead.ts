// 2. Transaction overhead: withTransaction() around two statements against the same statements between a
// hand-written BEGIN and COMMIT on a client of the same pg Pool; a write transaction (where ours reads the
// transaction id before COMMIT, one extra round trip) and a read-only one (where it does not), rounds interleaved.
import type { PoolClient } from 'pg';
import { Pool } from 'pg';
import type { Database } from '../../backend/src/shared/db';
import type { DbModule } from './bundles';
import type { BenchEnvironment } from './environment';
import { loopbackMicros, micros, withLoopback } from './loopback';
import type { Section } from './report';
import { fixed, median, pairedRatio, quantile, roundOrder, timeMillis, times } from './stats';

/** Options for {@link measureTransactionOverhead}. */
export interface TransactionOverheadOptions {
  readonly rounds: number;
  /** Transactions per variant per round. */
  readonly transactions: number;
  /** This module as a Lambda bundle runs it (buildLibraryBundle). */
  readonly library: DbModule;
}

const SECRET_ID = 'bench/transaction-overhead';
const INSERT = 'INSERT INTO bench_events (n) VALUES ($1)';
const UPDATE = 'UPDATE bench_counter SET n = n + 1 WHERE id = 1';
const READ_A = 'SELECT n FROM bench_counter WHERE id = 1';
const READ_B = 'SELECT count(*) FROM bench_counter';

/** BEGIN, the statements, COMMIT on a raw pooled client; ROLLBACK and destroy the client on failure. */
async function rawTransaction(pool: Pool, begin: string, body: (client: PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query(begin);
    await body(client);
    await client.query('COMMIT');
    client.release();
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release(err as Error);
    throw err;
  }
}

interface Pair {
  readonly kind: string;
  readonly roundTrips: string;
  readonly ours: (i: number) => Promise<unknown>;
  readonly raw: (i: number) => Promise<unknown>;
}

/** The two transaction kinds, each through withTransaction() on `db` and by hand on `pool`. */
function makePairs(db: Database, pool: Pool): Pair[] {
  return [
    {
      kind: 'write: INSERT + UPDATE',
      roundTrips: '5 vs 4',
      ours: (i) => db.withTransaction(async (c) => { await c.query(INSERT, [i]); await c.query(UPDATE); }),
      raw: (i) => rawTransaction(pool, 'BEGIN', async (c) => { await c.query(INSERT, [i]); await c.query(UPDATE); }),
    },
    {
      kind: 'read-only: two SELECTs',
      roundTrips: '4 vs 4',
      ours: () => db.withTransaction(async (c) => { await c.query(READ_A); await c.query(READ_B); }, { readOnly: true }),
      raw: () => rawTransaction(pool, 'BEGIN READ ONLY', async (c) => { await c.query(READ_A); await c.query(READ_B); }),
    },
  ];
}

/** The same pairs over the loopback: µs of JavaScript per transaction, by "kind/ours" and "kind/raw". */
function measureWithoutNetwork(env: BenchEnvironment, options: TransactionOverheadOptions): Promise<Map<string, number>> {
  return withLoopback(async () => {
    const db = options.library.createDatabase({ secretId: SECRET_ID, sslCaFile: env.postgres.caFile, logLevel: 'silent' });
    const pool = new Pool({ ...env.pgConfig(), max: 2 });
    try {
      const variants = makePairs(db, pool).flatMap((pair) => [
        { name: `${pair.kind}/ours`, run: pair.ours },
        { name: `${pair.kind}/raw`, run: pair.raw },
      ]);
      return await loopbackMicros(variants, options.rounds, options.transactions * 20);
    } finally {
      await Promise.all([db.close(), pool.end()]);
    }
  });
}

async function perTransactionMicros(run: (i: number) => Promise<unknown>, count: number): Promise<number> {
  const millis = await timeMillis(async () => {
    for (let i = 0; i < count; i++) await run(i);
  });
  return (millis * 1000) / count;
}

/** Measures and returns the section; the issue sets no target for transactions, so it reports ratios only. */
export async function measureTransactionOverhead(env: BenchEnvironment, options: TransactionOverheadOptions): Promise<Section> {
  env.putSecret(SECRET_ID);
  const db = options.library.createDatabase({ secretId: SECRET_ID, sslCaFile: env.postgres.caFile, logLevel: 'silent' });
  await db.query('CREATE TABLE IF NOT EXISTS bench_events (id bigserial PRIMARY KEY, n int NOT NULL)');
  await db.query('CREATE TABLE IF NOT EXISTS bench_counter (id int PRIMARY KEY, n bigint NOT NULL)');
  await db.query('INSERT INTO bench_counter VALUES (1, 0) ON CONFLICT (id) DO NOTHING');
  // The hand-written transactions use the pg Pool inside our instance: the same connection, so only our code differs.
  const pool = await db.getPool();

  const pairs = makePairs(db, pool);
  const rows: string[][] = [];
  try {
    for (const pair of pairs) {
      const variants = [{ name: 'ours', run: pair.ours }, { name: 'raw', run: pair.raw }];
      const samples = { ours: [] as number[], raw: [] as number[] };
      for (const variant of variants) await perTransactionMicros(variant.run, Math.max(5, Math.ceil(options.transactions / 4)));
      for (let round = 0; round < options.rounds; round++) {
        for (const variant of roundOrder(variants, round)) {
          samples[variant.name as 'ours' | 'raw'].push(await perTransactionMicros(variant.run, options.transactions));
        }
      }
      const ratio = pairedRatio(samples.ours, samples.raw);
      const spread = (values: number[]) => `${fixed(quantile(values, 0.25), 0)} – ${fixed(quantile(values, 0.75), 0)}`;
      rows.push([pair.kind, fixed(median(samples.ours), 0), spread(samples.ours), fixed(median(samples.raw), 0), spread(samples.raw), times(ratio), pair.roundTrips]);
    }
  } finally {
    await db.close();
  }
  const loopback = await measureWithoutNetwork(env, options);
  for (const row of rows) {
    const ours = loopback.get(`${row[0]}/ours`)!;
    const raw = loopback.get(`${row[0]}/raw`)!;
    row.push(micros(ours), micros(raw));
  }

  return {
    title: '2. Transaction overhead',
    intro: [
      `One caller, ${options.transactions} transactions per variant per round, ${options.rounds} rounds after a warm-up, ` +
        'interleaved. "raw" is `pool.connect()`, BEGIN, the two statements, COMMIT, `release()` by hand, on the pg ' +
        'Pool inside our instance, so both run on the same connection (see section 1 on why that matters here); ours ' +
        'runs from the same minified bundle as in section 1. ' +
        `The last two columns are the JavaScript cost alone: the same calls over a loopback connection that answers ` +
        `at once (${options.transactions * 20} transactions per round).`,
    ],
    tables: [{
      headers: ['transaction', 'withTransaction µs', 'quartiles', 'raw BEGIN/COMMIT µs', 'quartiles', 'ratio', 'round trips (ours vs raw)', 'ours µs, no network', 'raw µs, no network'],
      rows,
      right: [1, 2, 3, 4, 5, 6, 7, 8],
    }],
    notes: [
      'A write transaction costs ours one more round trip: `SELECT pg_current_xact_id_if_assigned()` before COMMIT, ' +
        'so that a COMMIT whose answer is lost can be settled with `pg_xact_status()` instead of guessed ' +
        '(failure-semantics.md). A `readOnly: true` transaction skips it. On localhost a round trip is ~0.1 ms and ' +
        'the commit flush dominates; against RDS (round trip ~0.3–1 ms) the extra trip is worth about as much as one statement.',
    ],
    targets: [],
  };
}
