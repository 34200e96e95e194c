// Input validation of the example handlers: every bad body, path or query parameter becomes an HttpError 400 whose
// one-sentence message names the field and never echoes the value.
// Pure functions: no database.
import { HttpError } from '../../../src/handlers/http';
import {
  parseJsonBody, pathUuid, queryInteger, rejectUnknownFields, requireEmail, requireInteger, requireString, requireUuid,
} from '../../../src/handlers/validate';
import { createHttpEvent } from '../../../../scripts/lib/http-event';

const UUID = '3f0c1b8e-5a4d-4c2b-9e1f-0a1b2c3d4e5f';

function badRequestMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).statusCode).toBe(400);
    return (err as HttpError).message;
  }
  throw new Error('expected a 400');
}

const event = (body: unknown, extra: { isBase64Encoded?: boolean } = {}) => ({ ...createHttpEvent({ method: 'POST', path: '/x', body }), ...extra });

describe('parseJsonBody', () => {
  it('returns the parsed object of a JSON body, base64-encoded or not', () => {
    const base64 = Buffer.from('{"a":1}').toString('base64');

    expect(parseJsonBody(event({ a: 1 }))).toEqual({ a: 1 });
    expect(parseJsonBody(event(base64, { isBase64Encoded: true }))).toEqual({ a: 1 });
  });

  it('rejects an empty body', () => {
    expect(badRequestMessage(() => parseJsonBody(event(undefined)))).toBe('Expected a JSON object in the request body, got an empty body.');
    expect(badRequestMessage(() => parseJsonBody(event('')))).toMatch(/empty body/);
  });

  it('rejects malformed JSON without quoting it', () => {
    const message = badRequestMessage(() => parseJsonBody(event('{"email": "secret@example.com",')));

    expect(message).toBe('Expected the request body to be valid JSON.');
    expect(message).not.toContain('secret');
  });

  it.each([['[1]', 'an array'], ['"text"', 'a string'], ['42', 'a number'], ['null', 'null']])('rejects %s as %s', (body, kind) => {
    expect(badRequestMessage(() => parseJsonBody(event(body)))).toBe(`Expected the request body to be a JSON object, got ${kind}.`);
  });

  it('rejects a body over 64 KiB', () => {
    expect(badRequestMessage(() => parseJsonBody(event({ name: 'x'.repeat(70_000) })))).toMatch(/at most 65536 bytes/);
  });
});

describe('field validators', () => {
  it('rejects an unknown field by name', () => {
    expect(badRequestMessage(() => rejectUnknownFields({ email: 'a', nmae: 'b' }, ['email', 'name']))).toBe('Unexpected field `nmae`; expected only `email`, `name`.');
  });

  it('names a missing field', () => {
    expect(badRequestMessage(() => requireString({}, 'name'))).toBe('Missing required field `name`.');
    expect(badRequestMessage(() => requireUuid({}, 'requestId'))).toBe('Missing required field `requestId`.');
    expect(badRequestMessage(() => requireInteger({}, 'amountCents', 1, 10))).toBe('Missing required field `amountCents`.');
  });

  it('names the field and the type it got, not the value', () => {
    expect(badRequestMessage(() => requireString({ name: 42 }, 'name'))).toBe('Expected `name` to be a string, got a number.');
    expect(badRequestMessage(() => requireUuid({ id: 'not-a-uuid' }, 'id'))).toBe('Expected `id` to be a UUID, got a string that is not one.');
    expect(badRequestMessage(() => requireUuid({ id: 7 }, 'id'))).toBe('Expected `id` to be a UUID, got a number.');
    expect(badRequestMessage(() => requireInteger({ n: '5' }, 'n', 1, 10))).toBe('Expected `n` to be an integer from 1 to 10, got a string.');
    expect(badRequestMessage(() => requireInteger({ n: null }, 'n', 1, 10))).toBe('Expected `n` to be an integer from 1 to 10, got null.');
  });

  it('trims strings and enforces their length', () => {
    expect(requireString({ name: '  Ada  ' }, 'name')).toBe('Ada');
    expect(badRequestMessage(() => requireString({ name: '   ' }, 'name'))).toBe('Expected `name` to be 1 to 200 characters long.');
    expect(badRequestMessage(() => requireString({ name: 'x'.repeat(201) }, 'name'))).toMatch(/1 to 200/);
  });

  it('rejects an unpaired surrogate, which would be stored as U+FFFD, and keeps a paired one (an emoji)', () => {
    expect(badRequestMessage(() => requireString({ name: 'Ada \ud800 L' }, 'name'))).toBe('Expected `name` to be valid Unicode text (it holds an unpaired surrogate).');
    expect(badRequestMessage(() => requireString({ name: 'Ada \udfff' }, 'name'))).toBe('Expected `name` to be valid Unicode text (it holds an unpaired surrogate).');
    expect(requireString({ name: 'Ada \ud83d\ude00' }, 'name')).toBe('Ada \u{1f600}');
  });

  it('rejects control characters, NUL among them, which PostgreSQL cannot store in text', () => {
    expect(badRequestMessage(() => requireString({ name: 'a\u0000b' }, 'name'))).toBe('Expected `name` to contain no control characters.');
    expect(badRequestMessage(() => requireString({ name: 'a\u001bb' }, 'name'))).toBe('Expected `name` to contain no control characters.');
    expect(badRequestMessage(() => requireEmail({ email: 'x\u0000@example.com' }, 'email'))).toBe('Expected `email` to contain no control characters.');
    expect(requireString({ name: 'Zoë Ångström' }, 'name')).toBe('Zoë Ångström');
  });

  it('lower-cases a valid email and rejects an invalid one', () => {
    expect(requireEmail({ email: ' Ada@Example.COM ' }, 'email')).toBe('ada@example.com');
    expect(badRequestMessage(() => requireEmail({ email: 'ada.example.com' }, 'email'))).toBe('Expected `email` to be an email address.');
    expect(badRequestMessage(() => requireEmail({ email: 'a b@example.com' }, 'email'))).toMatch(/email address/);
  });

  it('accepts canonical UUIDs in any case and returns them lower-cased', () => {
    expect(requireUuid({ id: UUID.toUpperCase() }, 'id')).toBe(UUID);
    expect(badRequestMessage(() => requireUuid({ id: `${UUID}0` }, 'id'))).toMatch(/UUID/);
    expect(badRequestMessage(() => requireUuid({ id: UUID.replace(/-/g, '') }, 'id'))).toMatch(/UUID/);
  });

  it('accepts integers within range only', () => {
    expect(requireInteger({ n: 10 }, 'n', 1, 10)).toBe(10);
    for (const n of [0, 11]) {
      expect(badRequestMessage(() => requireInteger({ n }, 'n', 1, 10))).toBe('Expected `n` to be an integer from 1 to 10, got one out of range.');
    }
    for (const n of [1.5, Number.NaN, Infinity]) {
      expect(badRequestMessage(() => requireInteger({ n }, 'n', 1, 10))).toBe('Expected `n` to be an integer from 1 to 10, got a number that is not an integer.');
    }
  });
});

describe('path and query parameters', () => {
  it('requires path UUIDs by name', () => {
    const ok = createHttpEvent({ method: 'GET', path: `/tenants/${UUID}/users` });
    const bad = createHttpEvent({ method: 'GET', path: '/tenants/abc/users' });

    expect(pathUuid(ok, 'tenantId')).toBe(UUID);
    expect(badRequestMessage(() => pathUuid(bad, 'tenantId'))).toBe('Expected path parameter `tenantId` to be a UUID.');
    expect(badRequestMessage(() => pathUuid(ok, 'userId'))).toBe('Missing path parameter `userId`.');
  });

  it('reads an optional integer query parameter within range', () => {
    const at = (query: string) => createHttpEvent({ method: 'GET', path: `/tenants/${UUID}/users${query}` });

    expect(queryInteger(at(''), 'limit', 1, 100, 20)).toBe(20);
    expect(queryInteger(at('?limit=100'), 'limit', 1, 100, 20)).toBe(100);
    for (const query of ['?limit=0', '?limit=101', '?limit=abc', '?limit=1.5', '?limit=-1', '?limit=', '?limit=1&limit=2']) {
      expect(badRequestMessage(() => queryInteger(at(query), 'limit', 1, 100, 20))).toBe('Expected query parameter `limit` to be an integer from 1 to 100.');
    }
  });
});
