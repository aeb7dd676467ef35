import { Alert, Button, Card, Form, Input, Select, Typography } from 'antd';
import { useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { ApiError, api, errorMessage, unwrap } from '../api/client';
import { useLocale } from '../i18n';
import { useSession } from '../session';

/** Only a page of this site may be the way back: what the URL parser makes of `next`
 *  (`/\evil.com`, `/%09/evil.com` included) must stay on this origin. */
export function safeNext(next: string | null): string {
  if (!next) return '/';
  try {
    const url = new URL(next, window.location.origin);
    return url.origin === window.location.origin ? url.pathname + url.search + url.hash : '/';
  } catch {
    return '/';
  }
}

export function LoginPage() {
  const { t, locale, setLocale } = useLocale();
  const { refresh } = useSession();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // the tenants to choose from, when the email and password are staff of several
  const [tenants, setTenants] = useState<string[] | null>(null);
  const next = params.get('next');

  async function submit(values: { email: string; password: string; tenant?: string }) {
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/auth/login', { body: values }));
      await refresh();
      navigate(safeNext(next), { replace: true });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'tenant_required') {
        setTenants((e.details as { tenants?: string[] } | null)?.tenants ?? []);
      } else {
        setError(errorMessage(e));
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <div style={{ minHeight: '100vh', display: 'grid', placeItems: 'center', background: 'linear-gradient(135deg,#eef3ff,#f7f9fc)' }}>
      <Card style={{ width: 380 }}>
        <Typography.Title level={3} style={{ marginTop: 0 }}>
          {t('app.name')}
        </Typography.Title>
        {next && !error && <Alert type="info" showIcon title={t('login.expired')} style={{ marginBottom: 16 }} />}
        {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 16 }} />}
        <Form layout="vertical" onFinish={submit} requiredMark={false} onValuesChange={(changed) => 'email' in changed && setTenants(null)}>
          <Form.Item label={t('login.email')} name="email" rules={[{ required: true, type: 'email' }]}>
            <Input autoComplete="username" autoFocus />
          </Form.Item>
          <Form.Item label={t('login.password')} name="password" rules={[{ required: true }]}>
            <Input.Password autoComplete="current-password" />
          </Form.Item>
          {tenants && (
            <Form.Item label={t('login.tenant')} name="tenant" rules={[{ required: true }]} extra={t('login.chooseTenant')}>
              <Select aria-label={t('login.tenant')} options={tenants.map((name) => ({ value: name, label: name }))} data-testid="login-tenant" />
            </Form.Item>
          )}
          <Button type="primary" htmlType="submit" block loading={busy}>
            {t('login.submit')}
          </Button>
        </Form>
        <Button type="link" style={{ paddingLeft: 0, marginTop: 8 }} onClick={() => setLocale(locale === 'zh' ? 'en' : 'zh')}>
          {t('common.language')}
        </Button>
      </Card>
    </div>
  );
}
