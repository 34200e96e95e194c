// POST /tenants/{tenantId}/transfers: moves money between two wallets of a tenant in one transaction. Both wallet rows
// are locked in id order first, so transfers touching a wallet queue instead of deadlocking and each sees the balance
// the previous one left (READ COMMITTED suffices: SERIALIZABLE would turn every such wait into a 40001 and a rerun).
// The client's requestId is an idempotency key: a retry finds its ledger row and gets the same answer (200) instead
// of moving money twice; two copies racing each other end with one ledger row (the unique key rolls the other back).
import type { Context } from 'aws-lambda';
import type { PoolClient } from 'pg';
import { CheckViolationError, query, UniqueViolationError, withTransaction } from '../shared/db';
import { createHandler, HttpError, json, notFound, type HttpEvent, type HttpResult } from './http';
import { parseJsonBody, pathUuid, rejectUnknownFields, requireInteger, requireUuid } from './validate';

/** Ten billion in cents: far below 2^53, so amounts and balances stay exact as JSON numbers. */
const MAX_AMOUNT_CENTS = 1_000_000_000_000;
const TRANSFER_COLUMNS = 'id, request_id, from_wallet_id, to_wallet_id, amount_cents, created_at';
const SELECT_TRANSFER = `SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE tenant_id = $1 AND request_id = $2`;
// Locking both wallets in id order makes opposite transfers queue instead of deadlocking.
const LOCK_WALLETS = 'SELECT id, balance_cents FROM wallets WHERE tenant_id = $1 AND id = ANY($2::uuid[]) ORDER BY id FOR UPDATE';
const ADD_TO_BALANCE = 'UPDATE wallets SET balance_cents = balance_cents + $2 WHERE id = $1';
const INSERT_TRANSFER = `INSERT INTO transfers (tenant_id, request_id, from_wallet_id, to_wallet_id, amount_cents)
  VALUES ($1, $2, $3, $4, $5) RETURNING ${TRANSFER_COLUMNS}`;

interface TransferInput {
  readonly requestId: string;
  readonly fromWalletId: string;
  readonly toWalletId: string;
  readonly amountCents: number;
}

interface TransferRow {
  readonly id: string;
  readonly request_id: string;
  readonly from_wallet_id: string;
  readonly to_wallet_id: string;
  readonly amount_cents: string;
  readonly created_at: Date;
}

const insufficientFunds = () => new HttpError(409, 'INSUFFICIENT_FUNDS', 'The source wallet does not hold enough funds for this transfer.');

function parseInput(event: HttpEvent): TransferInput {
  const body = parseJsonBody(event);
  rejectUnknownFields(body, ['requestId', 'fromWalletId', 'toWalletId', 'amountCents']);
  const input = {
    requestId: requireUuid(body, 'requestId'),
    fromWalletId: requireUuid(body, 'fromWalletId'),
    toWalletId: requireUuid(body, 'toWalletId'),
    amountCents: requireInteger(body, 'amountCents', 1, MAX_AMOUNT_CENTS),
  };
  if (input.fromWalletId === input.toWalletId) {
    throw new HttpError(400, 'BAD_REQUEST', 'Expected `toWalletId` to differ from `fromWalletId`.');
  }
  return input;
}

/** One attempt; it may run again from the top, so it only talks to the database. */
async function transferOnce(client: PoolClient, tenantId: string, input: TransferInput): Promise<{ row: TransferRow; replayed: boolean }> {
  const previous = await client.query<TransferRow>(SELECT_TRANSFER, [tenantId, input.requestId]);
  if (previous.rows.length > 0) return { row: previous.rows[0], replayed: true };

  const { rows: wallets } = await client.query<{ id: string; balance_cents: string }>(LOCK_WALLETS, [tenantId, [input.fromWalletId, input.toWalletId]]);
  const from = wallets.find((wallet) => wallet.id === input.fromWalletId);
  if (!from) throw notFound('Wallet `fromWalletId` not found in this tenant.');
  if (!wallets.some((wallet) => wallet.id === input.toWalletId)) throw notFound('Wallet `toWalletId` not found in this tenant.');
  if (BigInt(from.balance_cents) < BigInt(input.amountCents)) throw insufficientFunds();

  await client.query(ADD_TO_BALANCE, [input.fromWalletId, -input.amountCents]);
  await client.query(ADD_TO_BALANCE, [input.toWalletId, input.amountCents]);
  const inserted = await client.query<TransferRow>(INSERT_TRANSFER, [tenantId, input.requestId, input.fromWalletId, input.toWalletId, input.amountCents]);
  return { row: inserted.rows[0], replayed: false };
}

/** The answer for a transfer row: 201 when it was just made, 200 for a replay, 422 when the key was reused. */
function respond(row: TransferRow, input: TransferInput, replayed: boolean): HttpResult {
  const transfer = {
    id: row.id, requestId: row.request_id, fromWalletId: row.from_wallet_id, toWalletId: row.to_wallet_id,
    amountCents: Number(row.amount_cents), createdAt: row.created_at.toISOString(),
  };
  if (replayed && (transfer.fromWalletId !== input.fromWalletId || transfer.toWalletId !== input.toWalletId || transfer.amountCents !== input.amountCents)) {
    throw new HttpError(422, 'REQUEST_ID_REUSED', 'This `requestId` was already used for a different transfer.');
  }
  return json(replayed ? 200 : 201, { transfer }, replayed ? { 'idempotent-replayed': 'true' } : {});
}

async function transfer(event: HttpEvent, context: Context): Promise<HttpResult> {
  const tenantId = pathUuid(event, 'tenantId');
  const input = parseInput(event);

  try {
    const { row, replayed } = await withTransaction((client) => transferOnce(client, tenantId, input), { context });
    return respond(row, input, replayed);
  } catch (err) {
    if (err instanceof CheckViolationError && err.constraint === 'wallets_balance_nonnegative') throw insufficientFunds();
    if (err instanceof UniqueViolationError && err.constraint === 'transfers_request_key') {
      // A concurrent request with the same key committed first: answer with its transfer.
      // Not readOnly: a reader endpoint may lag behind the writer that just committed the row.
      const { rows } = await query<TransferRow>(SELECT_TRANSFER, [tenantId, input.requestId], { context, idempotent: true });
      if (rows.length > 0) return respond(rows[0], input, true);
    }
    throw err;
  }
}

/** The Lambda entry point (`index.handler` in the bundle). */
export const handler = createHandler('transfer', transfer);
