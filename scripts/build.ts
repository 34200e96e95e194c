// `npm run build [-- --external-sdk] [--outdir <dir>] [handler ...]`: one esbuild bundle and one zip per handler in
// dist/, with each bundle's size and gzip size. --external-sdk leaves @aws-sdk/* to the Lambda runtime (smaller
// bundles, but the runtime's SDK version changes under you); the default bundles the pinned one.
import path from 'node:path';
import { buildHandlers, formatReports, REPO_ROOT } from './lib/build-handlers';

async function main(argv: string[]): Promise<void> {
  const externalSdk = argv.includes('--external-sdk');
  const outIndex = argv.indexOf('--outdir');
  const outDir = outIndex >= 0 ? path.resolve(argv[outIndex + 1]) : path.join(REPO_ROOT, 'dist');
  const handlers = argv.filter((arg, i) => !arg.startsWith('--') && argv[i - 1] !== '--outdir');
  const startedAt = Date.now();

  const reports = await buildHandlers({ outDir, externalSdk, handlers: handlers.length ? handlers : undefined });

  console.log(formatReports(reports));
  const sdk = externalSdk ? '@aws-sdk/* left to the Lambda runtime' : 'AWS SDK bundled';
  console.log(`\n${reports.length} bundle(s) in ${path.relative(process.cwd(), outDir) || '.'} (${sdk}) in ${Date.now() - startedAt} ms.`);
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`Build failed: ${err.message}`);
  process.exitCode = 1;
});
