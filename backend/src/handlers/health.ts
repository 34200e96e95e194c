// GET /health: a liveness and database check for load balancers and the local run. It answers 200 with the round
// trip time of SELECT 1, or 503 when the database cannot be reached in time (the error boundary decides the status).
// Route: GET /health.
import type { Context } from 'aws-lambda';
import { query } from '../shared/db';
import { createHandler, json, type HttpEvent, type HttpResult } from './http';

async function health(_event: HttpEvent, context: Context): Promise<HttpResult> {
  const startedAt = Date.now();
  await query('SELECT 1', [], { context, readOnly: true, idempotent: true });
  return json(200, { status: 'ok', database: { ok: true, latencyMillis: Date.now() - startedAt } });
}

/** The Lambda entry point (`index.handler` in the bundle). */
export const handler = createHandler('health', health);
