// `npm run db:check [-- --count N] [--local [--dir <folder>]]`: checks the database the environment configures
// (DB_SECRET_ID or DATABASE_URL, DB_SSL…) through createDatabase(), one PASS/FAIL line per step; with --local, the
// stack `npm start` uses (joined when a local run is active). Exit code 0 when every check passes, 1 if not, 2 on bad usage.
import { createDatabase, type DbLogger } from '../backend/src/shared/db';
import { runDbCheck, type CheckResult } from './lib/db-check';
import { startLocalStack, type LocalStack } from './lib/local-stack';

/** The command line, parsed. */
export interface DbCheckArguments {
  readonly count: number;
  readonly local: boolean;
  readonly dir?: string;
}

const USAGE = 'Usage: npm run db:check [-- --count N] [--local [--dir <folder>]]';

/** Parses the arguments; throws with the usage line on anything it does not know. */
export function parseDbCheckArguments(argv: readonly string[]): DbCheckArguments {
  let count = 50;
  let local = false;
  let dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--local') local = true;
    else if (arg === '--dir' && argv[i + 1] !== undefined) dir = argv[++i];
    else if (arg === '--count' && /^\d+$/.test(argv[i + 1] ?? '') && Number(argv[i + 1]) >= 1 && Number(argv[i + 1]) <= 100_000) count = Number(argv[++i]);
    else if (arg === '--count') throw new Error(`Expected --count to be an integer from 1 to 100000, got "${argv[i + 1] ?? ''}". ${USAGE}`);
    else throw new Error(`Unknown argument "${arg}". ${USAGE}`);
  }
  if (dir !== undefined && !local) throw new Error(`--dir only applies with --local. ${USAGE}`);
  return { count, local, dir };
}

function printResult(result: CheckResult): void {
  console.log(`${result.status}  ${result.name.padEnd(12)} ${result.detail}`);
}

/** The module's own warnings (DB_SSL=require, a retry budget running out) as indented notes under the check lines. */
const notes: DbLogger = {
  info: () => undefined,
  warn: (message) => console.log(`      note: ${message}`),
  error: (message) => console.log(`      note: ${message}`),
};

async function main(argv: readonly string[]): Promise<number> {
  let args: DbCheckArguments;
  try {
    args = parseDbCheckArguments(argv);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  let stack: LocalStack | undefined;
  if (args.local) {
    stack = await startLocalStack({ dir: args.dir, migrate: false, reuseRunning: true });
    const how = stack.reused ? 'joined the active local run' : 'started';
    console.log(`Local stack (${how}): PostgreSQL on localhost:${stack.postgres.port}, Secrets Manager at ${stack.secretsManager.url}`);
  }
  try {
    const results = await runDbCheck(() => createDatabase({ logger: notes }), { count: args.count, onResult: printResult });
    const failed = results.filter((result) => result.status === 'FAIL').length;
    const skipped = results.filter((result) => result.status === 'SKIP').length;
    console.log(failed === 0 ? `\nAll ${results.length} checks passed.` : `\n${failed} of ${results.length} checks failed${skipped ? `, ${skipped} skipped` : ''}.`);
    return failed === 0 ? 0 : 1;
  } finally {
    await stack?.stop();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`db:check could not run: ${error.message}`);
      process.exit(1);
    },
  );
}
