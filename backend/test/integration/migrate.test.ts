// The migration runner against PostgreSQL: applies each file once in its own transaction, is safe with concurrent
// runners (advisory lock), refuses an edited applied migration, and rolls a failing one back entirely.
// The demo seed is applied separately and can be applied again without changing anything.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDatabase, type Database } from '../../src/shared/db';
import { migrate, MIGRATIONS_DIR, MigrationError } from '../../../scripts/lib/migrate';
import { DEMO_TENANT_ID, DEMO_WALLET_A_ID, seedDemoData } from '../../../scripts/lib/seed';
import { createTestDatabase, testServer, type TestDatabase } from './support/postgres';
import { runScript, scriptEnv } from './support/run-script';

const opened: Array<{ db: Database; database: TestDatabase }> = [];

async function freshDatabase(options: Parameters<typeof createDatabase>[0] = {}): Promise<Database> {
  const server = testServer();
  const database = await createTestDatabase('migrate');
  const db = createDatabase({
    databaseUrl: `postgres://${encodeURIComponent(server.user)}:${encodeURIComponent(server.password)}@${server.host}:${server.port}/${database.name}`,
    sslCaFile: server.caFile,
    poolMax: 10,
    ...options,
  });
  opened.push({ db, database });
  return db;
}

function migrationsDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migrations-'));
  for (const [name, sql] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), sql);
  return dir;
}

const versions = async (db: Database) => (await db.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version);

afterAll(async () => {
  for (const { db, database } of opened) {
    await db.close();
    await database.drop();
  }
});

describe('migrate', () => {
  it('applies the project migrations once and records their checksums', async () => {
    const db = await freshDatabase();

    const first = await migrate(db);
    const second = await migrate(db);

    expect(first).toEqual(['001', '002']);
    expect(second).toEqual([]);
    const { rows } = await db.query('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
    expect(rows).toEqual([
      { version: '001', name: 'init', checksum: expect.stringMatching(/^[0-9a-f]{64}$/) },
      { version: '002', name: 'user_request_id', checksum: expect.stringMatching(/^[0-9a-f]{64}$/) },
    ]);
    expect((await db.query('SELECT count(*)::int AS n FROM wallets')).rows[0].n).toBe(0);
  });

  it('applies each migration exactly once when 5 runners start together', async () => {
    const db = await freshDatabase();
    const dir = migrationsDir({ '001_a.sql': 'CREATE TABLE a (id int);', '002_b.sql': 'CREATE TABLE b (id int);', '003_c.sql': 'INSERT INTO a VALUES (1);' });

    const results = await Promise.all(Array.from({ length: 5 }, () => migrate(db, { dir })));

    expect(results.flat().sort()).toEqual(['001', '002', '003']);
    expect(await versions(db)).toEqual(['001', '002', '003']);
    expect((await db.query('SELECT count(*)::int AS n FROM a')).rows[0].n).toBe(1);
  });

  it("gives a migration the runner's own timeouts, not the short ones the database uses for requests", async () => {
    const db = await freshDatabase({ statementTimeoutMillis: 500 });
    const dir = migrationsDir({ '001_slow.sql': 'SELECT pg_sleep(3); CREATE TABLE slow (id int);' });

    const applied = await migrate(db, { dir });

    expect(applied).toEqual(['001']);
    expect(await versions(db)).toEqual(['001']);
  });

  it('fails a migration that outruns its statement timeout on the server, definitively, leaving nothing running', async () => {
    const db = await freshDatabase();
    const dir = migrationsDir({ '001_endless.sql': 'SELECT pg_sleep(30);' });

    const error = await migrate(db, { dir, statementTimeoutMillis: 400 }).catch((e: unknown) => e);
    const { rows } = await db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'");

    expect(error).toMatchObject({ name: 'MigrationError', message: expect.stringMatching(/^Migration 001_endless failed and was rolled back: StatementTimeoutError: /) });
    expect((error as Error).cause).toMatchObject({ name: 'StatementTimeoutError', attempts: 1 });
    expect(rows[0].n).toBe(0);
  });

  it('refuses to run when an applied migration was edited, applying nothing after it', async () => {
    const db = await freshDatabase();
    const dir = migrationsDir({ '001_a.sql': 'CREATE TABLE a (id int);' });
    await migrate(db, { dir });
    fs.writeFileSync(path.join(dir, '001_a.sql'), 'CREATE TABLE a (id bigint);');
    fs.writeFileSync(path.join(dir, '002_b.sql'), 'CREATE TABLE b (id int);');

    await expect(migrate(db, { dir })).rejects.toThrow(MigrationError);
    await expect(migrate(db, { dir })).rejects.toThrow(/001_a was edited after it was applied/);
    expect(await versions(db)).toEqual(['001']);
  });

  it('rolls a failing migration back entirely and keeps the ones before it', async () => {
    const db = await freshDatabase();
    const dir = migrationsDir({ '001_a.sql': 'CREATE TABLE a (id int);', '002_b.sql': 'CREATE TABLE b (id int);\nSELECT 1/0;' });

    await expect(migrate(db, { dir })).rejects.toThrow(/^Migration 002_b failed and was rolled back: QueryError: division by zero \(SQLSTATE 22012\)$/);

    expect(await versions(db)).toEqual(['001']);
    expect((await db.query("SELECT to_regclass('b') AS b")).rows[0].b).toBeNull();
  });
});

describe('seedDemoData', () => {
  it('adds the demo tenant and wallets, and changes nothing when applied again', async () => {
    const db = await freshDatabase();
    await migrate(db, { dir: MIGRATIONS_DIR });
    await seedDemoData(db);
    await db.query('UPDATE wallets SET balance_cents = 1 WHERE id = $1', [DEMO_WALLET_A_ID]);

    await seedDemoData(db);

    expect((await db.query('SELECT id FROM tenants')).rows).toEqual([{ id: DEMO_TENANT_ID }]);
    const wallets = await db.query('SELECT name, balance_cents FROM wallets ORDER BY name');
    expect(wallets.rows).toEqual([{ name: 'Alice', balance_cents: '1' }, { name: 'Bob', balance_cents: '50000' }]);
  });
});

describe('npm run migrate', () => {
  it.each([
    [['--seeds'], 'Unknown argument "--seeds"'],
    [['--dir'], '--dir needs a folder'],
  ])('refuses %j before connecting, with exit code 2', async (args, message) => {
    const { code, output } = await runScript('migrate.ts', args, scriptEnv({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }));

    expect(code).toBe(2);
    expect(output).toContain(`Migration failed: ${message}`);
  });
});
