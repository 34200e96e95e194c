// Run by shutdown.test.ts through tsx: a stand-in Lambda sandbox (AWS_LAMBDA_FUNCTION_NAME set) that opens the
// default pool with one query, prints "ready", and then waits for the SIGTERM Lambda sends before a shutdown.
// As it exits it prints whether that pool was ended with its connections closed: the server's session count cannot
// tell, as the OS drops the connections of any process that dies.
import fs from 'node:fs';
import { getPool, query } from '../../../src/shared/db';

query('SELECT 1').then(
  async () => {
    const pool = await getPool();
    // Written synchronously: an 'exit' listener cannot wait for an asynchronous write.
    process.on('exit', () => fs.writeSync(1, `pool ended: ${pool.ended}, connections left: ${pool.totalCount}\n`));
    // SIGTERM_APP_LISTENER=once: the application has its own `once` listener, which then owns the exit.
    if (process.env.SIGTERM_APP_LISTENER === 'once') {
      process.once('SIGTERM', () => {
        setTimeout(() => {
          fs.writeSync(1, 'app listener done\n');
          process.exit(3);
        }, 400);
      });
    }
    process.stdout.write('ready\n');
    // Keeps the process alive the way the Lambda runtime's event loop would.
    setInterval(() => undefined, 1000);
  },
  (error: unknown) => {
    process.stderr.write(`${(error as Error).name}: ${(error as Error).message}\n`);
    process.exit(1);
  },
);
