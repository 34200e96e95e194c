// Builds the benchmark handlers with the options of scripts/lib/build-handlers.ts (CommonJS, node22, minified,
// dynamic import() lowered to require()), ours with this project's stand-ins and the peers without them, as they
// would be built by hand; once with the AWS SDK bundled and once with @aws-sdk/* left to the runtime. Reports
// bytes, gzip bytes and each package's share.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { build, type Metafile } from 'esbuild';
import { handlerBuildOptions } from '../lib/build-handlers';

/** The handlers compared, by the name the tables use. */
export const BENCH_HANDLERS = {
  'lambda-pg': 'scripts/bench/bench-handler.ts',
  'minimal (pg + GetSecretValue)': 'scripts/bench/peers/minimal.ts',
  'Powertools getSecret': 'scripts/bench/peers/powertools.ts',
} as const;

/** A handler's name in {@link BENCH_HANDLERS}. */
export type BenchHandler = keyof typeof BENCH_HANDLERS;

/** Whether @aws-sdk/* is inside the bundle or left to the Lambda runtime. */
export type SdkMode = 'bundled' | 'external';

/** One built bundle. */
export interface BenchBundle {
  readonly handler: BenchHandler;
  /** The name shown in tables. */
  readonly label: string;
  readonly sdk: SdkMode;
  readonly file: string;
  readonly bytes: number;
  readonly gzipBytes: number;
  /** Output bytes by package (`pg`, `@aws-sdk/…` grouped as `@aws-sdk`, `(this repository)`, …). */
  readonly bytesByPackage: ReadonlyMap<string, number>;
  /**
   * The same handler's bytes when built as ours is, with this project's stand-ins for the parts of pg no handler
   * reaches (for ours, the bundle itself). The peers are built with esbuild's settings alone, as by hand.
   */
  readonly asBuiltHere: { readonly bytes: number; readonly gzipBytes: number };
}

const REPO_ROOT = path.resolve(__dirname, '../..');

function packageOf(input: string): string {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) return '(this repository)';
  const [scope, rest] = input.slice(at + 'node_modules/'.length).split('/');
  if (['@aws-sdk', '@smithy', '@aws-crypto'].includes(scope)) return '@aws-sdk, @smithy, @aws-crypto';
  return scope.startsWith('@') ? `${scope}/${rest}` : scope;
}

function bytesByPackage(metafile: Metafile): Map<string, number> {
  const totals = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const name = packageOf(input);
      totals.set(name, (totals.get(name) ?? 0) + bytesInOutput);
    }
  }
  return totals;
}

const sizeOf = (file: string) => {
  const code = fs.readFileSync(file);
  return { bytes: code.length, gzipBytes: zlib.gzipSync(code, { level: 9 }).length };
};

/**
 * Builds one handler into `<outDir>/<sdk>/<index>/index.js`: ours as `npm run build` does, a peer with esbuild's
 * settings alone (and, for {@link BenchBundle.asBuiltHere}, once more as ours is).
 */
export async function buildBenchBundle(handler: BenchHandler, sdk: SdkMode, outDir: string): Promise<BenchBundle> {
  const index = Object.keys(BENCH_HANDLERS).indexOf(handler);
  const dir = path.join(outDir, sdk, String(index));
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'index.js');
  const external = sdk === 'external' ? ['@aws-sdk/*'] : [];
  const entryPoints = [path.join(REPO_ROOT, BENCH_HANDLERS[handler])];
  const peer = handler !== 'lambda-pg';
  const result = await build({ ...handlerBuildOptions(external, { plain: peer }), entryPoints, outfile: file, metafile: true });
  let asBuiltHere = sizeOf(file);
  if (peer) {
    const again = path.join(dir, 'as-built-here', 'index.js');
    await build({ ...handlerBuildOptions(external), entryPoints, outfile: again });
    asBuiltHere = sizeOf(again);
  }
  return { handler, label: handler, sdk, file, ...sizeOf(file), bytesByPackage: bytesByPackage(result.metafile), asBuiltHere };
}

/** The db.ts facade's module type, as {@link buildLibraryBundle} returns it. */
export type DbModule = typeof import('../../backend/src/shared/db');

/**
 * This module alone, bundled and minified as in a handler bundle (one file, no cross-module getters as a per-file
 * transpiler leaves them), with pg and the SDK left to node_modules: the raw baselines and the network-free loopback
 * then run the very same pg code as our instance.
 */
export async function buildLibraryBundle(): Promise<DbModule> {
  // Under node_modules, so that its require('pg') resolves to the repository's copy.
  const file = path.join(REPO_ROOT, 'node_modules/.cache/lambda-pg-bench/db.js');
  await build({
    ...handlerBuildOptions(['pg', '@aws-sdk/*']),
    entryPoints: [path.join(REPO_ROOT, 'backend/src/shared/db.ts')],
    outfile: file,
  });
  return require(file) as DbModule;
}

/** Builds every handler in both SDK modes. */
export async function buildBenchBundles(outDir: string): Promise<BenchBundle[]> {
  const bundles: BenchBundle[] = [];
  for (const sdk of ['bundled', 'external'] as const) {
    for (const handler of Object.keys(BENCH_HANDLERS) as BenchHandler[]) bundles.push(await buildBenchBundle(handler, sdk, outDir));
  }
  return bundles;
}
