// `npm run migrate [-- --seed] [--dir <folder>]`: applies pending migrations to the database the environment
// configures (DB_SECRET_ID or DATABASE_URL, plus the DB_* variables), then the demo seed when asked.
// Exit code 0 when the schema is current; 1 with a one-line reason otherwise; 2 on bad usage.
import { createDatabase } from '../backend/src/shared/db';
import { migrate, MIGRATIONS_DIR } from './lib/migrate';
import { seedDemoData } from './lib/seed';

const USAGE = 'Usage: npm run migrate [-- --seed] [--dir <folder>]';

async function main(argv: string[]): Promise<void> {
  const unknown = argv.find((arg, i) => arg !== '--seed' && arg !== '--dir' && argv[i - 1] !== '--dir');
  if (unknown !== undefined) throw new UsageError(`Unknown argument "${unknown}". ${USAGE}`);
  const dirIndex = argv.indexOf('--dir');
  if (dirIndex >= 0 && argv[dirIndex + 1] === undefined) throw new UsageError(`--dir needs a folder. ${USAGE}`);
  const dir = dirIndex >= 0 ? argv[dirIndex + 1] : MIGRATIONS_DIR;
  const db = createDatabase();
  console.log(`Migrating ${db.credentialsSource} from ${dir}`);
  try {
    const applied = await migrate(db, { dir, onApplied: (m) => console.log(`  applied ${m.version}_${m.name}`) });
    console.log(applied.length ? `${applied.length} migration(s) applied.` : 'The schema is up to date.');
    if (argv.includes('--seed')) {
      await seedDemoData(db);
      console.log('Demo data seeded.');
    }
  } finally {
    await db.close();
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((err: Error) => {
  // A usage mistake or a MigrationError already says what and where; a database error is named by its class.
  const plain = err instanceof UsageError || err.name === 'MigrationError';
  console.error(`Migration failed: ${plain ? err.message : `${err.name}: ${err.message}`}`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
