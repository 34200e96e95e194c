// 3. Cold start: fresh node processes that require a built bundle and complete the first invocation (secret fetch
// from the local endpoint, TLS connect verified against a CA file, SELECT 1), ours and the peers interleaved, with
// the AWS SDK bundled and external; plus the TLS context costs of tls-context.ts.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { BenchBundle } from './bundles';
import type { BenchEnvironment } from './environment';
import type { Section } from './report';
import { runBundle, type RunnerTimings } from './runner';
import { fixed, median, pairedRatio, pairedRatioInterval, roundOrder, times, timesWithInterval } from './stats';
import { measureTlsContexts } from './tls-context';

/** Options for {@link measureColdStart}. */
export interface ColdStartOptions {
  /** Processes per bundle. */
  readonly processes: number;
  /** The runner script from writeRunner(). */
  readonly runner: string;
}

const SECRET_ID = 'bench/cold-start';
const BASELINE = 'minimal (pg + GetSecretValue)';
const REPO_NODE_MODULES = path.resolve(__dirname, '../../node_modules');

/**
 * pg decides at load whether it runs on Cloudflare Workers: with no `navigator` global (Node < 21) it constructs a
 * `Response`, which loads undici. Its cost in fresh processes, or undefined on a Node that skips it.
 */
function measureCloudflareCheckMillis(): number | undefined {
  if (Number(process.versions.node.split('.')[0]) >= 21) return undefined;
  const source = 'const t = performance.now(); new Response(null); process.stdout.write(String(performance.now() - t))';
  return median([0, 1, 2].map(() => Number(execFileSync(process.execPath, ['-e', source], { encoding: 'utf8' }))));
}

/** Measures cold starts of `bundles` (every handler in both SDK modes); returns the section. */
export async function measureColdStart(env: BenchEnvironment, bundles: readonly BenchBundle[], options: ColdStartOptions): Promise<Section> {
  env.putSecret(SECRET_ID);
  const childEnv = {
    ...env.awsEnv,
    DB_SECRET_ID: SECRET_ID,
    DB_SSL_CA_FILE: env.postgres.caFile,
    AWS_LAMBDA_FUNCTION_NAME: 'bench-cold-start',
    // Where an external SDK resolves from, as the Lambda runtime's NODE_PATH does; unused by self-contained bundles.
    NODE_PATH: REPO_NODE_MODULES,
  };
  // Our external-SDK bundle once more, reading the secret through the Lambda extension's HTTP API: the SDK is
  // then never loaded at all.
  const viaExtension = { ...bundles.find((b) => b.sdk === 'external' && b.handler === 'lambda-pg')!, label: 'lambda-pg via the secrets extension (no SDK loaded)' };
  const extensionEnv = { ...childEnv, PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(env.secrets.port), AWS_SESSION_TOKEN: env.secrets.extensionToken };
  const all = [...bundles, viaExtension];
  const envOf = (bundle: BenchBundle) => (bundle === viaExtension ? extensionEnv : childEnv);
  const samples = new Map(all.map((bundle) => [bundle, [] as RunnerTimings[]]));
  for (const bundle of all) await runBundle(options.runner, bundle.file, { mode: 'cold', env: envOf(bundle) }); // warms the page cache
  for (let round = 0; round < options.processes; round++) {
    for (const bundle of roundOrder(all, round)) samples.get(bundle)!.push(await runBundle(options.runner, bundle.file, { mode: 'cold', env: envOf(bundle) }));
  }

  const initAndFirst = (timings: RunnerTimings[]) => timings.map((t) => t.loadMillis + t.firstMillis);
  const baselineOf = (bundle: BenchBundle) => bundles.find((b) => b.sdk === bundle.sdk && b.handler === BASELINE)!;
  const ratioOf = (bundle: BenchBundle, metric: (t: RunnerTimings[]) => number[]) =>
    pairedRatio(metric(samples.get(bundle)!), metric(samples.get(baselineOf(bundle))!));
  const rows = (['bundled', 'external'] as const).flatMap((sdk) => all.filter((bundle) => bundle.sdk === sdk)).map((bundle) => {
    const timings = samples.get(bundle)!;
    const m = (pick: (t: RunnerTimings) => number) => fixed(median(timings.map(pick)), 1);
    return [
      `SDK ${bundle.sdk}`, bundle.label, m((t) => t.loadMillis), m((t) => t.firstMillis), fixed(median(initAndFirst(timings)), 1),
      m((t) => t.totalMillis), times(ratioOf(bundle, initAndFirst)), times(ratioOf(bundle, (t) => t.map((x) => x.totalMillis))),
    ];
  });
  const ours = (sdk: string) => bundles.find((b) => b.sdk === sdk && b.handler === 'lambda-pg')!;
  const target = (sdk: 'bundled' | 'external') => {
    const ratio = ratioOf(ours(sdk), initAndFirst);
    const interval = pairedRatioInterval(initAndFirst(samples.get(ours(sdk))!), initAndFirst(samples.get(baselineOf(ours(sdk)))!));
    return { name: `cold start, SDK ${sdk}`, goal: '≤ 1.05× minimal (load + first invocation)', measured: timesWithInterval(ratio, interval), met: ratio <= 1.05 };
  };

  const cloudflareCheckMillis = measureCloudflareCheckMillis();
  const nodeNote = cloudflareCheckMillis === undefined ? [] : [
    `On Node ${process.versions.node.split('.')[0]} (this run) pg's Cloudflare check loads undici when the bundle loads, ` +
      `${fixed(cloudflareCheckMillis, 1)} ms in every handler here; Lambda's Node 22 runtime has \`navigator\` and skips it, ` +
      'so there every absolute figure is lower and the ratios a little further from 1.',
  ];
  return {
    title: '3. Cold start',
    intro: [
      `${options.processes} fresh \`node\` process${options.processes === 1 ? '' : 'es'} per bundle after one unmeasured warm-up each, bundles interleaved ` +
        'in a balanced order (each runs after every other equally often). Each process requires the bundle and invokes its handler once: Secrets Manager ' +
        'GetSecretValue from the local endpoint, a TLS connection verified against the local CA file, `SELECT 1`. ' +
        '"load" is the require() of the bundle, "first invocation" the handler call until its response, "start → ' +
        'response" also counts node\'s own boot. Ratios are per round, against the minimal handler with the same SDK mode.',
      'The external-SDK bundles resolve `@aws-sdk/*` from the repository\'s node_modules through NODE_PATH, as the ' +
        'Lambda runtime resolves its own copy. Built like `npm run build`: esbuild, CommonJS, node22, minified.',
    ],
    tables: [
      {
        headers: ['SDK', 'handler', 'load ms', 'first invocation ms', 'load + first ms', 'start → response ms', 'vs minimal (load + first)', 'vs minimal (start → response)'],
        rows,
        right: [2, 3, 4, 5, 6, 7],
      },
      await measureTlsContexts(env.postgres.caFile, Math.max(3, Math.ceil(options.processes / 2))),
    ],
    notes: [
      'Our bundles carry no certificates: the RDS CA set ships as rds-ca.pem beside index.js and is read only by a ' +
        'first connection to an RDS endpoint (this benchmark verifies against a CA file, so it is never read).',
      'The "via the secrets extension" row is our external-SDK bundle with PARAMETERS_SECRETS_EXTENSION_HTTP_PORT set: ' +
        'the secret comes over HTTP from the local stand-in of the AWS Parameters and Secrets Lambda Extension and the ' +
        'Secrets Manager SDK is never loaded, which is what an extension-based deployment saves on every cold start.',
      'Our module imports the Secrets Manager SDK with import() on the first fetch, so its "load" leaves out the SDK ' +
        'and its first invocation includes it; the peers import it at the top. Compare "load + first".',
      'The second table is what verify-full costs to set up, in fresh processes (median of the rounds; "select" is ' +
        'parsing every certificate to keep one region\'s). The cold starts above use the one-certificate local CA for ' +
        "every handler, so they leave out the CA set: in production our first connection builds the default set's " +
        'context once per process, and a hand-written handler that passes `ssl: { ca }` to pg builds its set on every ' +
        'new connection (tls.connect makes a context per call).',
      ...nodeNote,
    ],
    targets: [target('bundled'), target('external')],
  };
}
