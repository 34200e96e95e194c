// Input validation for the example handlers: the JSON body, path and query parameters. Every failure is an
// HttpError 400 with one sentence naming the field and what was expected; values are never echoed back, since
// they may be personal data. Validation runs before any query, so bad input never writes anything.
import { badRequest, type HttpEvent } from './http';

/** A parsed JSON object body. */
export type JsonObject = Record<string, unknown>;

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// Deliberately loose: one @, no spaces, a dot in the domain. Deliverability is not the API's to judge.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const MAX_EMAIL_LENGTH = 254;
// Control characters, NUL among them (PostgreSQL cannot store it in text and would answer SQLSTATE 22021).
const CONTROL = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE = /\p{Cs}/u;
const MAX_BODY_BYTES = 64 * 1024;

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'object' ? 'an object' : type === 'undefined' ? 'nothing' : `a ${type}`;
}

/** Parses the event's body as a JSON object (base64 bodies included); rejects empty, malformed and non-object bodies. */
export function parseJsonBody(event: HttpEvent): JsonObject {
  if (event.body === undefined || event.body === null || event.body === '') {
    throw badRequest('Expected a JSON object in the request body, got an empty body.');
  }
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) {
    throw badRequest(`Expected a request body of at most ${MAX_BODY_BYTES} bytes.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's own message quotes the input: keep it out of the response.
    throw badRequest('Expected the request body to be valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badRequest(`Expected the request body to be a JSON object, got ${kindOf(parsed)}.`);
  }
  return parsed as JsonObject;
}

/** Rejects fields the handler does not know, so a typo is an error rather than silently ignored. */
export function rejectUnknownFields(body: JsonObject, allowed: readonly string[]): void {
  const unknown = Object.keys(body).find((key) => !allowed.includes(key));
  if (unknown !== undefined) {
    throw badRequest(`Unexpected field \`${unknown.slice(0, 64)}\`; expected only ${allowed.map((f) => `\`${f}\``).join(', ')}.`);
  }
}

/** A required string field, trimmed, of `minLength` to `maxLength` characters and no control characters. */
export function requireString(body: JsonObject, field: string, minLength = 1, maxLength = 200): string {
  const value = body[field];
  if (value === undefined) throw badRequest(`Missing required field \`${field}\`.`);
  if (typeof value !== 'string') throw badRequest(`Expected \`${field}\` to be a string, got ${kindOf(value)}.`);
  const trimmed = value.trim();
  if (trimmed.length < minLength || trimmed.length > maxLength) {
    throw badRequest(`Expected \`${field}\` to be ${minLength} to ${maxLength} characters long.`);
  }
  if (CONTROL.test(trimmed)) throw badRequest(`Expected \`${field}\` to contain no control characters.`);
  // A lone UTF-16 surrogate cannot be stored: it would become U+FFFD, and a replay of the same request would differ.
  if (LONE_SURROGATE.test(trimmed)) throw badRequest(`Expected \`${field}\` to be valid Unicode text (it holds an unpaired surrogate).`);
  return trimmed;
}

/** A required email address, lower-cased so uniqueness does not depend on case. */
export function requireEmail(body: JsonObject, field: string): string {
  const value = requireString(body, field, 3, MAX_EMAIL_LENGTH);
  if (!EMAIL.test(value)) throw badRequest(`Expected \`${field}\` to be an email address.`);
  return value.toLowerCase();
}

/** True for a canonical 8-4-4-4-12 hexadecimal UUID. */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/** A required UUID field of the body, lower-cased. */
export function requireUuid(body: JsonObject, field: string): string {
  const value = body[field];
  if (value === undefined) throw badRequest(`Missing required field \`${field}\`.`);
  if (!isUuid(value)) throw badRequest(`Expected \`${field}\` to be a UUID, got ${typeof value === 'string' ? 'a string that is not one' : kindOf(value)}.`);
  return value.toLowerCase();
}

/** An optional UUID field of the body, lower-cased; undefined when absent. */
export function optionalUuid(body: JsonObject, field: string): string | undefined {
  return body[field] === undefined ? undefined : requireUuid(body, field);
}

/** A required integer field from `min` to `max` (both safe integers). */
export function requireInteger(body: JsonObject, field: string, min: number, max: number): number {
  const value = body[field];
  if (value === undefined) throw badRequest(`Missing required field \`${field}\`.`);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const got = typeof value !== 'number' ? kindOf(value) : Number.isInteger(value) ? 'one out of range' : 'a number that is not an integer';
    throw badRequest(`Expected \`${field}\` to be an integer from ${min} to ${max}, got ${got}.`);
  }
  return value;
}

/** A path parameter that must be a UUID (API Gateway fills pathParameters from the route's `{name}`). */
export function pathUuid(event: HttpEvent, name: string): string {
  const value = event.pathParameters?.[name];
  if (value === undefined) throw badRequest(`Missing path parameter \`${name}\`.`);
  if (!isUuid(value)) throw badRequest(`Expected path parameter \`${name}\` to be a UUID.`);
  return value.toLowerCase();
}

/** An optional integer query parameter from `min` to `max`, or `fallback` when absent. */
export function queryInteger(event: HttpEvent, name: string, min: number, max: number, fallback: number): number {
  const raw = event.queryStringParameters?.[name];
  if (raw === undefined) return fallback;
  const value = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= min && value <= max)) {
    throw badRequest(`Expected query parameter \`${name}\` to be an integer from ${min} to ${max}.`);
  }
  return value;
}

/** Rejects query parameters the handler does not know, so that `?offset=` or a typo is an error, not page one again. */
export function rejectUnknownQuery(event: HttpEvent, allowed: readonly string[]): void {
  const unknown = Object.keys(event.queryStringParameters ?? {}).find((key) => !allowed.includes(key));
  if (unknown !== undefined) {
    throw badRequest(`Unexpected query parameter \`${unknown.slice(0, 64)}\`; expected only ${allowed.map((p) => `\`${p}\``).join(', ')}.`);
  }
}
