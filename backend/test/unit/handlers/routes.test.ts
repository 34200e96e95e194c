// The route table: API Gateway style matching of method and path template, with decoded path parameters.
// It drives the build's handler list and the local server's routing.
// Pure functions: no database.
import { HANDLER_NAMES, matchRoute } from '../../../src/handlers/routes';

describe('matchRoute', () => {
  it('binds path parameters of the matching route', () => {
    const match = matchRoute('get', '/tenants/t-1/users/u%201');

    expect(match?.route.handler).toBe('get-user');
    expect(match?.pathParameters).toEqual({ tenantId: 't-1', userId: 'u 1' });
  });

  it('tells routes apart by method and segment count', () => {
    expect(matchRoute('POST', '/tenants/t/users')?.route.handler).toBe('create-user');
    expect(matchRoute('GET', '/tenants/t/users')?.route.handler).toBe('list-users');
    expect(matchRoute('DELETE', '/tenants/t/users')).toBeUndefined();
    expect(matchRoute('GET', '/tenants/t/users/u/extra')).toBeUndefined();
    expect(matchRoute('GET', '/health/')?.route.handler).toBe('health');
  });
});

describe('HANDLER_NAMES', () => {
  it('lists each handler once', () => {
    expect(HANDLER_NAMES).toEqual(['health', 'create-user', 'list-users', 'get-user', 'transfer']);
  });
});
