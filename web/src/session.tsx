// Who is signed in, and what they may do. The console asks the API (`GET /api/v1/me`);
// it hides what the role cannot do, and the API refuses it anyway.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, unwrap, type Schemas } from './api/client';
import { setTenantCurrency, setTenantTimeZone } from './format';

type Me = Schemas['Me'];

type Ctx = {
  me: Me | null;
  loading: boolean;
  can: (permission: string) => boolean;
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
};

const SessionContext = createContext<Ctx | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState(true);

  const refresh = useCallback(async () => {
    setLoading(true);
    try {
      const { data, response } = await api.GET('/api/v1/me');
      setMe(response.ok && data ? data : null);
      if (response.ok && data) {
        setTenantTimeZone(data.tenant.time_zone);
        setTenantCurrency(data.currency);
      }
    } catch {
      setMe(null);
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    if (!window.location.pathname.startsWith('/login')) void refresh();
    else setLoading(false);
  }, [refresh]);

  const signOut = useCallback(async () => {
    await unwrap(api.POST('/api/v1/auth/logout')).catch(() => undefined);
    setMe(null);
    window.location.assign('/login');
  }, []);

  const can = useCallback((permission: string) => !!me?.permissions.includes(permission), [me]);

  return <SessionContext.Provider value={{ me, loading, can, refresh, signOut }}>{children}</SessionContext.Provider>;
}

export function useSession(): Ctx {
  const ctx = useContext(SessionContext);
  if (!ctx) throw new Error('useSession outside SessionProvider');
  return ctx;
}
