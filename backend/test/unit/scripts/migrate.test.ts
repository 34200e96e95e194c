// The migration runner's pure parts: reading NNN_name.sql files in numeric order with checksums, and deciding the
// next migration while refusing an edited, missing or out-of-order one.
// Temporary directories only; the integration test runs migrate() against PostgreSQL.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadMigrations, MIGRATIONS_DIR, MigrationError, nextPending, type Migration } from '../../../../scripts/lib/migrate';

function dirWith(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migrations-'));
  for (const [name, sql] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), sql);
  return dir;
}

const m = (version: string, checksum = `sum${version}`): Migration => ({ version, name: `m${version}`, sql: '', checksum });

describe('loadMigrations', () => {
  it('orders files by their numeric version and ignores other files', () => {
    const dir = dirWith({ '10_c.sql': 'C', '2_b.sql': 'B', '001_a.sql': 'A', 'README.md': '' });

    expect(loadMigrations(dir).map((x) => `${x.version}_${x.name}`)).toEqual(['001_a', '2_b', '10_c']);
  });

  it('gives the same checksum to LF and CRLF copies of a file', () => {
    const [lf] = loadMigrations(dirWith({ '001_a.sql': 'SELECT 1;\nSELECT 2;\n' }));
    const [crlf] = loadMigrations(dirWith({ '001_a.sql': 'SELECT 1;\r\nSELECT 2;\r\n' }));

    expect(crlf.checksum).toBe(lf.checksum);
    expect(lf.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a badly named file and a duplicate version', () => {
    expect(() => loadMigrations(dirWith({ 'init.sql': '' }))).toThrow(/init\.sql must be named NNN_name\.sql/);
    expect(() => loadMigrations(dirWith({ '1_a.sql': '', '001_b.sql': '' }))).toThrow(/share a version number/);
  });

  it('reads the project migrations', () => {
    expect(loadMigrations(MIGRATIONS_DIR)[0]).toMatchObject({ version: '001', name: 'init' });
  });
});

describe('nextPending', () => {
  it('returns the first migration not yet applied, or undefined when none is left', () => {
    expect(nextPending([], [m('1'), m('2')])?.version).toBe('1');
    expect(nextPending([{ version: '1', checksum: 'sum1' }], [m('1'), m('2')])?.version).toBe('2');
    expect(nextPending([{ version: '1', checksum: 'sum1' }, { version: '2', checksum: 'sum2' }], [m('1'), m('2')])).toBeUndefined();
  });

  it('refuses a migration edited after it was applied', () => {
    expect(() => nextPending([{ version: '1', checksum: 'old' }], [m('1')])).toThrow(MigrationError);
    expect(() => nextPending([{ version: '1', checksum: 'old' }], [m('1')])).toThrow('Migration 1_m1 was edited after it was applied (checksum differs); restore it and add a new migration instead.');
  });

  it('refuses an applied migration that has no file', () => {
    expect(() => nextPending([{ version: '3', checksum: 'sum3' }], [m('1')])).toThrow(/Migration 3 is applied but has no file/);
  });

  it('refuses a pending migration numbered below an applied one', () => {
    expect(() => nextPending([{ version: '3', checksum: 'sum3' }], [m('2'), m('3')])).toThrow(/2_m2 is pending but a later one is already applied/);
  });
});
