// The console: providers (language, session), the routes, and the guard that sends a
// signed-out user to login and a user without the permission to a 403 page.
import { App as AntApp, ConfigProvider, Result, Spin } from 'antd';
import enUS from 'antd/locale/en_US';
import zhCN from 'antd/locale/zh_CN';
import type { ReactNode } from 'react';
import { createBrowserRouter, Navigate, RouterProvider, useLocation } from 'react-router';
import { loginUrl } from './api/client';
import { LocaleProvider, useLocale } from './i18n';
import { AuditPage } from './pages/Audit';
import { AcquisitionPage } from './pages/Acquisition';
import { BroadcastsPage } from './pages/Broadcasts';
import { ChannelsPage } from './pages/Channels';
import { CustomerPage } from './pages/Customer';
import { CustomersPage } from './pages/Customers';
import { DashboardPage } from './pages/Dashboard';
import { ImportsPage } from './pages/Imports';
import { JobsPage } from './pages/Jobs';
import { LoginPage } from './pages/Login';
import { RolesPage, StaffPage, TokensPage, UnitsPage } from './pages/Admin';
import { ContentPage } from './pages/Content';
import { QuickRepliesPage } from './pages/QuickReplies';
import { SegmentPage, SegmentsPage } from './pages/Segments';
import { SettingsPage } from './pages/Settings';
import { SourcesPage } from './pages/Sources';
import { TagRulesPage, TagsPage } from './pages/Tags';
import { Shell } from './Shell';
import { SessionProvider, useSession } from './session';

const router = createBrowserRouter([
  { path: '/login', element: <LoginPage /> },
  {
    element: <SignedIn />,
    children: [
      { path: '/', element: <Home /> },
      { path: '/dashboard', element: <Guard permission="analytics.read"><DashboardPage /></Guard> },
      { path: '/customers', element: <Guard permission="customers.read"><CustomersPage /></Guard> },
      { path: '/customers/:id', element: <Guard permission="customers.read"><CustomerPage /></Guard> },
      { path: '/segments', element: <Guard permission="segments.read"><SegmentsPage /></Guard> },
      { path: '/segments/:id', element: <Guard permission="segments.read"><SegmentPage /></Guard> },
      { path: '/tags', element: <Guard permission="tags.read"><TagsPage /></Guard> },
      { path: '/tag-rules', element: <Guard permission="tags.read"><TagRulesPage /></Guard> },
      { path: '/sources', element: <Guard permission="sources.read"><SourcesPage /></Guard> },
      { path: '/channels', element: <Guard permission="connectors.read"><ChannelsPage /></Guard> },
      { path: '/acquisition', element: <Guard permission="campaigns.read"><AcquisitionPage /></Guard> },
      { path: '/broadcasts', element: <Guard permission="broadcasts.read"><BroadcastsPage /></Guard> },
      { path: '/content', element: <Guard permission="content.read"><ContentPage /></Guard> },
      { path: '/quick-replies', element: <Guard permission="content.read"><QuickRepliesPage /></Guard> },
      { path: '/imports', element: <Guard permission="customers.import"><ImportsPage /></Guard> },
      { path: '/jobs', element: <Guard permission="jobs.read"><JobsPage /></Guard> },
      { path: '/staff', element: <Guard permission="staff.read"><StaffPage /></Guard> },
      { path: '/units', element: <Guard permission="units.read"><UnitsPage /></Guard> },
      { path: '/roles', element: <Guard permission="roles.read"><RolesPage /></Guard> },
      { path: '/tokens', element: <Guard permission="tokens.read"><TokensPage /></Guard> },
      { path: '/audit', element: <Guard permission="audit.read"><AuditPage /></Guard> },
      { path: '/settings', element: <SettingsPage /> },
      { path: '*', element: <NotFound /> },
    ],
  },
]);

export function App() {
  return (
    <LocaleProvider>
      <Themed>
        <SessionProvider>
          <RouterProvider router={router} />
        </SessionProvider>
      </Themed>
    </LocaleProvider>
  );
}

// Someone who asked their system for less motion gets none: dropdowns, dialogs and
// messages appear and go at once (WCAG 2.3.3). The browser tests ask for it too, so a
// click never lands on a list that is still sliding shut.
const REDUCED_MOTION = typeof window !== 'undefined' && window.matchMedia?.('(prefers-reduced-motion: reduce)').matches === true;

// colours chosen for WCAG AA contrast of text (4.5:1) on white and light grey; the
// browser tests check every page with axe-core
const THEME = {
  token: {
    motion: !REDUCED_MOTION,
    colorPrimary: '#1d4ed8',
    colorLink: '#1d4ed8',
    colorInfo: '#1d4ed8',
    colorError: '#cf1322',
    colorSuccess: '#237804',
    colorWarning: '#ad4e00',
    colorTextDescription: '#666666',
    colorTextTertiary: '#666666',
    colorTextPlaceholder: '#737373',
    borderRadius: 6,
  },
};

function Themed({ children }: { children: ReactNode }) {
  const { locale } = useLocale();
  return (
    <ConfigProvider locale={locale === 'zh' ? zhCN : enUS} theme={THEME}>
      <AntApp>{children}</AntApp>
    </ConfigProvider>
  );
}

function SignedIn() {
  const { me, loading } = useSession();
  const location = useLocation();
  if (loading) return <Spin fullscreen />;
  if (!me) return <Navigate to={loginUrl()} replace state={{ from: location }} />;
  return <Shell />;
}

/** The page, or a 403 for a role without the permission. */
export function Guard({ permission, children }: { permission: string; children: ReactNode }) {
  const { can } = useSession();
  const { t } = useLocale();
  if (!can(permission)) return <Result status="403" title="403" subTitle={t('common.forbidden')} data-testid="forbidden" />;
  return <>{children}</>;
}

function NotFound() {
  const { t } = useLocale();
  return <Result status="404" title="404" subTitle={t('common.notFound')} />;
}

/** The first page the role may open: the dashboard, else the customers. */
function Home() {
  const { can } = useSession();
  return <Navigate to={can('analytics.read') ? '/dashboard' : '/customers'} replace />;
}
