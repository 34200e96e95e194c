// The HTTP API's routes: method, path template and the handler module (backend/src/handlers/<handler>.ts) that
// serves it. One table for the build (one bundle per handler), the local server's routing and the deploy docs.
// API Gateway fills `pathParameters` from the `{name}` segments.

/** One API Gateway HTTP API route. */
export interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly handler: string;
}

/** Every route the example API serves. */
export const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/health', handler: 'health' },
  { method: 'POST', path: '/tenants/{tenantId}/users', handler: 'create-user' },
  { method: 'GET', path: '/tenants/{tenantId}/users', handler: 'list-users' },
  { method: 'GET', path: '/tenants/{tenantId}/users/{userId}', handler: 'get-user' },
  { method: 'POST', path: '/tenants/{tenantId}/transfers', handler: 'transfer' },
];

/** The handler names, each once, in route order. */
export const HANDLER_NAMES: readonly string[] = [...new Set(ROUTES.map((route) => route.handler))];

/** Finds the route for a method and a concrete path, with the path parameters it binds. */
export function matchRoute(method: string, path: string): { route: Route; pathParameters: Record<string, string> } | undefined {
  const segments = path.split('/').filter(Boolean);
  for (const route of ROUTES) {
    if (route.method !== method.toUpperCase()) continue;
    const template = route.path.split('/').filter(Boolean);
    if (template.length !== segments.length) continue;
    const pathParameters: Record<string, string> = {};
    const matches = template.every((part, i) => {
      const name = /^\{(\w+)\}$/.exec(part)?.[1];
      if (name) pathParameters[name] = decodeURIComponent(segments[i]);
      return name !== undefined || part === segments[i];
    });
    if (matches) return { route, pathParameters };
  }
  return undefined;
}
