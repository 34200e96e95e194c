// `npm run invoke -- <handler> <event.json> [--bundle] [--dist <dir>] [--timeout <ms>]`: runs one handler once with a
// fake Lambda context and prints the response. By default the TypeScript source (through tsx); with --bundle the
// built dist/<handler>/index.js, as Lambda would load it. The database comes from the environment (DB_*, DATABASE_URL).
import fs from 'node:fs';
import path from 'node:path';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { HANDLER_NAMES } from '../backend/src/handlers/routes';
import { REPO_ROOT } from './lib/build-handlers';
import { createLambdaContext } from './lib/lambda-context';

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

function option(argv: string[], name: string): string | undefined {
  const index = argv.indexOf(name);
  return index >= 0 ? argv[index + 1] : undefined;
}

async function loadHandler(name: string, bundle: boolean, distDir: string): Promise<Handler> {
  const file = bundle ? path.join(distDir, name, 'index.js') : path.join(REPO_ROOT, 'backend/src/handlers', `${name}.ts`);
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist${bundle ? '; run `npm run build` first' : ''}.`);
  const loaded = (await import(file)) as { handler?: Handler; default?: { handler?: Handler } };
  const handler = loaded.handler ?? loaded.default?.handler;
  if (typeof handler !== 'function') throw new Error(`${file} exports no handler function.`);
  return handler;
}

/** The event file as JSON; a missing file or bad JSON is named as such. */
function readEvent(file: string): APIGatewayProxyEventV2 {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`The event file ${file} could not be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`);
  }
  try {
    return JSON.parse(text) as APIGatewayProxyEventV2;
  } catch (err) {
    throw new Error(`The event file ${file} is not valid JSON: ${(err as Error).message}.`);
  }
}

const USAGE = `Usage: npm run invoke -- <handler> <event.json> [--bundle] [--dist <dir>] [--timeout <ms>]; handlers: ${HANDLER_NAMES.join(', ')}.`;
const WITH_VALUE = ['--dist', '--timeout'];

async function main(argv: string[]): Promise<void> {
  const unknown = argv.find((arg, i) => arg.startsWith('--') && arg !== '--bundle' && !WITH_VALUE.includes(arg) && !WITH_VALUE.includes(argv[i - 1]));
  if (unknown !== undefined) throw new Error(`Unknown argument "${unknown}". ${USAGE}`);
  const missing = WITH_VALUE.find((flag) => argv.includes(flag) && option(argv, flag) === undefined);
  if (missing !== undefined) throw new Error(`${missing} needs a value. ${USAGE}`);
  const positional = argv.filter((arg, i) => !arg.startsWith('--') && !WITH_VALUE.includes(argv[i - 1]));
  const [name, eventFile] = positional;
  if (name && !HANDLER_NAMES.includes(name)) throw new Error(`Unknown handler "${name}". ${USAGE}`);
  if (!name || !eventFile || positional.length > 2) throw new Error(USAGE);
  const event = readEvent(eventFile);
  const timeout = option(argv, '--timeout');
  if (timeout !== undefined && !(/^\d+$/.test(timeout) && Number(timeout) >= 1 && Number(timeout) <= 900_000)) {
    throw new Error(`Expected --timeout to be a number of milliseconds from 1 to 900000 (Lambda's limit), got "${timeout}".`);
  }
  const distDir = path.resolve(option(argv, '--dist') ?? path.join(REPO_ROOT, 'dist'));
  const handler = await loadHandler(name, argv.includes('--bundle'), distDir);
  const context = createLambdaContext({ functionName: name, timeoutMillis: timeout ? Number(timeout) : undefined });
  const startedAt = Date.now();

  const response = await handler(event, context);

  let body: unknown = response.body;
  try {
    body = response.body === undefined ? undefined : JSON.parse(response.body);
  } catch {
    // Not JSON: print it as the string it is.
  }
  console.log(JSON.stringify({ ...response, body }, null, 2));
  console.error(`${name}: ${response.statusCode} in ${Date.now() - startedAt} ms (request ${context.awsRequestId})`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`Invoke failed: ${err.message}`);
    process.exit(1);
  },
);
