// `npm run build [-- --iam] [--external-sdk] [--outdir <dir>] [handler ...]`: one esbuild bundle and one zip per
// handler in dist/, with each bundle's size and gzip size. --iam bundles @aws-sdk/rds-signer, which DB_AUTH=iam needs
// (left out by default: no other setting loads it). --external-sdk leaves @aws-sdk/* to the Lambda runtime (smaller
// bundles, but the runtime's SDK version changes under you; the signer too, --iam or not); the default bundles the
// pinned one.
import path from 'node:path';
import { buildHandlers, formatReports, REPO_ROOT } from './lib/build-handlers';

const USAGE = 'Usage: npm run build [-- --iam] [--external-sdk] [--outdir <dir>] [handler ...]';
const FLAGS = ['--iam', '--external-sdk', '--outdir'];

async function main(argv: string[]): Promise<void> {
  const unknown = argv.find((arg, i) => arg.startsWith('--') && !FLAGS.includes(arg) && argv[i - 1] !== '--outdir');
  if (unknown !== undefined) throw new Error(`Unknown argument "${unknown}"; expected ${FLAGS.join(', ')} or handler names. ${USAGE}`);
  const externalSdk = argv.includes('--external-sdk');
  const iam = argv.includes('--iam');
  const outIndex = argv.indexOf('--outdir');
  if (outIndex >= 0 && argv[outIndex + 1] === undefined) throw new Error(`--outdir needs a directory. ${USAGE}`);
  const outDir = outIndex >= 0 ? path.resolve(argv[outIndex + 1]) : path.join(REPO_ROOT, 'dist');
  const handlers = argv.filter((arg, i) => !arg.startsWith('--') && argv[i - 1] !== '--outdir');
  const startedAt = Date.now();

  if (iam && externalSdk) console.warn('--iam has no effect with --external-sdk: @aws-sdk/rds-signer then comes from the runtime, as the rest of @aws-sdk/*.');
  const reports = await buildHandlers({ outDir, externalSdk, iam, handlers: handlers.length ? handlers : undefined });

  console.log(formatReports(reports));
  const sdk = externalSdk ? '@aws-sdk/* left to the Lambda runtime' : iam ? 'AWS SDK and IAM token signer bundled' : 'AWS SDK bundled; IAM token signer left out, --iam adds it';
  console.log(`\n${reports.length} bundle(s) in ${path.relative(process.cwd(), outDir) || '.'} (${sdk}) in ${Date.now() - startedAt} ms.`);
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`Build failed: ${err.message}`);
  process.exitCode = 1;
});
