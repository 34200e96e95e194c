// Every handler validates its whole input before it touches the database: for each kind of bad request the answer
// is a 400 naming the field, and neither query nor withTransaction was called, so nothing can have been written.
// The db facade is mocked; the integration tests check the same against a real database.
import { createHttpEvent, type HttpEventOptions } from '../../../../scripts/lib/http-event';
import { createLambdaContext } from '../../../../scripts/lib/lambda-context';

jest.mock('../../../src/shared/db', () => ({
  ...jest.requireActual('../../../src/shared/db'),
  query: jest.fn(async () => { throw new Error('query must not be called'); }),
  withTransaction: jest.fn(async () => { throw new Error('withTransaction must not be called'); }),
}));

import * as db from '../../../src/shared/db';
import { handler as createUser } from '../../../src/handlers/create-user';
import { handler as getUser } from '../../../src/handlers/get-user';
import { handler as listUsers } from '../../../src/handlers/list-users';
import { handler as transfer } from '../../../src/handlers/transfer';

const T = '3f0c1b8e-5a4d-4c2b-9e1f-0a1b2c3d4e5f';
const W1 = '11111111-1111-4111-8111-111111111111';
const W2 = '22222222-2222-4222-8222-222222222222';
const goodTransfer = { requestId: '33333333-3333-4333-8333-333333333333', fromWalletId: W1, toWalletId: W2, amountCents: 100 };

const cases: Array<[string, typeof createUser, HttpEventOptions, RegExp]> = [
  ['create-user with malformed JSON', createUser, { method: 'POST', path: `/tenants/${T}/users`, body: '{"email":' }, /valid JSON/],
  ['create-user without a body', createUser, { method: 'POST', path: `/tenants/${T}/users` }, /empty body/],
  ['create-user without email', createUser, { method: 'POST', path: `/tenants/${T}/users`, body: { name: 'Ada' } }, /`email`/],
  ['create-user with a numeric name', createUser, { method: 'POST', path: `/tenants/${T}/users`, body: { email: 'a@b.co', name: 5 } }, /`name` to be a string/],
  ['create-user with a bad tenant id', createUser, { method: 'POST', path: '/tenants/nope/users', body: { email: 'a@b.co', name: 'A' } }, /`tenantId`/],
  ['create-user with an extra field', createUser, { method: 'POST', path: `/tenants/${T}/users`, body: { email: 'a@b.co', name: 'A', admin: true } }, /`admin`/],
  ['create-user with a bad requestId', createUser, { method: 'POST', path: `/tenants/${T}/users`, body: { email: 'a@b.co', name: 'A', requestId: 'r1' } }, /`requestId` to be a UUID/],
  ['get-user with a bad user id', getUser, { method: 'GET', path: `/tenants/${T}/users/42` }, /`userId`/],
  ['list-users with limit=0', listUsers, { method: 'GET', path: `/tenants/${T}/users?limit=0` }, /`limit`/],
  ['transfer with a string amount', transfer, { method: 'POST', path: `/tenants/${T}/transfers`, body: { ...goodTransfer, amountCents: '100' } }, /`amountCents`/],
  ['transfer with a negative amount', transfer, { method: 'POST', path: `/tenants/${T}/transfers`, body: { ...goodTransfer, amountCents: -1 } }, /`amountCents`/],
  ['transfer with a fractional amount', transfer, { method: 'POST', path: `/tenants/${T}/transfers`, body: { ...goodTransfer, amountCents: 1.5 } }, /`amountCents` to be an integer from 1 to \d+, got a number that is not an integer\./],
  ['transfer without requestId', transfer, { method: 'POST', path: `/tenants/${T}/transfers`, body: { ...goodTransfer, requestId: undefined } }, /`requestId`/],
  ['transfer with a bad wallet id', transfer, { method: 'POST', path: `/tenants/${T}/transfers`, body: { ...goodTransfer, toWalletId: 'w2' } }, /`toWalletId`/],
  ['transfer to the same wallet', transfer, { method: 'POST', path: `/tenants/${T}/transfers`, body: { ...goodTransfer, toWalletId: W1 } }, /differ/],
];

describe('handlers on bad input', () => {
  afterEach(() => jest.clearAllMocks());

  it.each(cases)('answer %s with 400 before touching the database', async (_name, handler, request, message) => {
    const result = await handler(createHttpEvent(request), createLambdaContext());

    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body ?? '{}').error).toEqual({ code: 'BAD_REQUEST', message: expect.stringMatching(message) });
    expect(db.query).not.toHaveBeenCalled();
    expect(db.withTransaction).not.toHaveBeenCalled();
  });
});
