// The typed API client. Its paths and types come from generated/schema.d.ts, made from
// openapi.json at build time, so a call to an endpoint or field the server does not have
// fails the build instead of failing in front of a user.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from '../../generated/schema';

export type Schemas = components['schemas'];

/** The API's one error shape: `{"error":{"code","message","details"}}`. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details: unknown,
  ) {
    super(message);
  }

  /** The fields a validation error names (`details.fields`), for showing each message
   * next to its field. */
  get fields(): { field: string; message: string }[] {
    const d = this.details as { fields?: unknown } | null;
    if (!d || !Array.isArray(d.fields)) return [];
    return d.fields.filter((f): f is { field: string; message: string } => !!f && typeof f.field === 'string' && typeof f.message === 'string');
  }

  /** The first field a validation error names. */
  get field(): string | undefined {
    return this.fields[0]?.field;
  }
}

/** Where the console goes when the session has expired: login, then back here. */
export function loginUrl(): string {
  const here = window.location.pathname + window.location.search;
  return here.startsWith('/login') ? '/login' : `/login?next=${encodeURIComponent(here)}`;
}

const expiredSession: Middleware = {
  async onResponse({ request, response }) {
    const isLogin = new URL(request.url).pathname === '/api/v1/auth/login';
    if (response.status === 401 && !isLogin && !window.location.pathname.startsWith('/login')) {
      window.location.assign(loginUrl());
    }
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin, credentials: 'same-origin' });
api.use(expiredSession);

/** The data of an openapi-fetch answer, or the API's error thrown as an [`ApiError`]. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const body = (error ?? {}) as { error?: { code?: string; message?: string; details?: unknown } };
  throw new ApiError(
    response.status,
    body.error?.code ?? 'http_' + response.status,
    body.error?.message ?? response.statusText ?? 'request failed',
    body.error?.details ?? null,
  );
}

/** A message for any thrown value, for an inline alert. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
