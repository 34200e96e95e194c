// Run by shutdown.test.ts through tsx: a stand-in Lambda sandbox (AWS_LAMBDA_FUNCTION_NAME set) that opens the
// default pool with one query, prints "ready", and then waits for the SIGTERM Lambda sends before a shutdown.
import { query } from '../../../src/shared/db';

query('SELECT 1').then(
  () => {
    process.stdout.write('ready\n');
    // Keeps the process alive the way the Lambda runtime's event loop would.
    setInterval(() => undefined, 1000);
  },
  (error: unknown) => {
    process.stderr.write(`${(error as Error).name}: ${(error as Error).message}\n`);
    process.exit(1);
  },
);
