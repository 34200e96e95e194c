// The API Gateway v2 events the local run and the tests build: the query string is everything after the first "?",
// as API Gateway keeps it.
import { createHttpEvent } from '../../../../scripts/lib/http-event';

describe('createHttpEvent', () => {
  it('keeps a query string that holds a second "?" whole', () => {
    const event = createHttpEvent({ method: 'GET', path: '/tenants/3f0c1b8e-5a4d-4c2b-9e1f-0a1b2c3d4e5f/users?q=a?b&limit=5' });

    expect(event.rawPath).toBe('/tenants/3f0c1b8e-5a4d-4c2b-9e1f-0a1b2c3d4e5f/users');
    expect(event.rawQueryString).toBe('q=a?b&limit=5');
    expect(event.queryStringParameters).toEqual({ q: 'a?b', limit: '5' });
  });
});
