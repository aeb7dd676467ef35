// Settings: one's own password, the identity kinds that name one person, the tenant
// currency and its exchange rates, the quiet hours sends and reminders keep, and (with
// settings.write) the tenant's score settings — RFM windows and cut points, lifecycle
// rules, KOC criteria — edited as the JSON the API takes, with the API's error shown
// beside the editor.
import { Alert, App, Button, Card, Col, Form, Input, InputNumber, Row, Select, Space, Switch, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { api, errorMessage, unwrap } from '../api/client';
import { useLocale, type MessageKey } from '../i18n';
import { useSession } from '../session';

type RateRow = { code: string; rate: number | null };

export function SettingsPage() {
  const { t } = useLocale();
  const { can } = useSession();
  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t('nav.settings')}
      </Typography.Title>
      <Row gutter={[16, 16]}>
        <Col xs={24} xl={8}>
          <PasswordCard />
        </Col>
        {can('customers.read') && (
          <Col xs={24} xl={16}>
            <IdentityCard editable={can('settings.write')} />
          </Col>
        )}
        {can('orders.read') && (
          <Col xs={24} xl={12}>
            <CurrencyCard editable={can('settings.write')} />
          </Col>
        )}
        {can('broadcasts.read') && (
          <Col xs={24} xl={12}>
            <QuietHoursCard editable={can('settings.write')} />
          </Col>
        )}
        {can('analytics.read') && (
          <>
            <Col xs={24} xl={16}>
              <ScoreSettings which="rfm" title="settings.rfm" editable={can('settings.write')} />
            </Col>
            <Col xs={24} xl={12}>
              <ScoreSettings which="lifecycle" title="settings.lifecycle" editable={can('settings.write')} />
            </Col>
            <Col xs={24} xl={12}>
              <ScoreSettings which="koc" title="settings.koc" editable={can('settings.write')} />
            </Col>
          </>
        )}
      </Row>
    </Space>
  );
}

function PasswordCard() {
  const { t } = useLocale();
  const { message } = App.useApp();
  const [form] = Form.useForm<{ current_password: string; new_password: string }>();
  const [error, setError] = useState<string | null>(null);
  async function submit(values: { current_password: string; new_password: string }) {
    setError(null);
    try {
      await unwrap(api.PUT('/api/v1/me/password', { body: values }));
      form.resetFields();
      void message.success(t('common.saved'));
    } catch (e) {
      setError(errorMessage(e));
    }
  }
  return (
    <Card size="small" title={t('settings.password')}>
      <Form form={form} layout="vertical" onFinish={submit}>
        <Form.Item name="current_password" label={t('settings.current')} rules={[{ required: true }]}>
          <Input.Password autoComplete="current-password" />
        </Form.Item>
        <Form.Item name="new_password" label={t('settings.new')} rules={[{ required: true, min: 10 }]} validateStatus={error ? 'error' : undefined} help={error ?? undefined}>
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Button type="primary" htmlType="submit">
          {t('common.save')}
        </Button>
      </Form>
    </Card>
  );
}

const KINDS = ['user_id', 'email', 'phone', 'wecom_external_userid', 'wechat_unionid', 'wechat_openid'];

/** The identity kinds that name one person: profiles with different values of one of
 * them never merge (a family phone, a shop's tablet). Ranked in the order given. */
function IdentityCard({ editable }: { editable: boolean }) {
  const { t } = useLocale();
  const { message } = App.useApp();
  const [kinds, setKinds] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    unwrap(api.GET('/api/v1/settings/identity'))
      .then((s) => setKinds(s.identifying_kinds))
      .catch((e) => setError(errorMessage(e)));
  }, []);
  async function save() {
    setError(null);
    try {
      const saved = await unwrap(api.PUT('/api/v1/settings/identity', { body: { identifying_kinds: kinds } }));
      setKinds(saved.identifying_kinds);
      void message.success(t('common.saved'));
    } catch (e) {
      setError(errorMessage(e));
    }
  }
  return (
    <Card size="small" title={t('settings.identity')} extra={editable && <Button size="small" type="primary" onClick={save} data-testid="save-identity">{t('common.save')}</Button>}>
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 8 }} />}
      <Typography.Paragraph type="secondary">{t('settings.identityHelp')}</Typography.Paragraph>
      <Select
        mode="tags"
        aria-label={t('settings.identity')}
        value={kinds}
        onChange={setKinds}
        disabled={!editable}
        options={KINDS.map((k) => ({ value: k, label: k }))}
        style={{ width: '100%' }}
        data-testid="identifying-kinds"
      />
    </Card>
  );
}

/** The tenant currency and the rates of other currencies to it, for orders that carry
 * none of their own. */
function CurrencyCard({ editable }: { editable: boolean }) {
  const { t } = useLocale();
  const { message } = App.useApp();
  const { refresh } = useSession();
  const [currency, setCurrency] = useState('CNY');
  const [rates, setRates] = useState<RateRow[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  function show(s: { currency: string; rates?: Record<string, number> }) {
    setLoaded(true);
    setCurrency(s.currency);
    setRates(Object.entries(s.rates ?? {}).map(([code, rate]) => ({ code, rate })));
  }
  useEffect(() => {
    unwrap(api.GET('/api/v1/settings/currency'))
      .then(show)
      .catch((e) => setError(errorMessage(e)));
  }, []);
  async function save() {
    setError(null);
    const body = { currency, rates: Object.fromEntries(rates.filter((r) => r.code.trim() !== '').map((r) => [r.code.trim(), r.rate ?? 0])) };
    try {
      const before = currency;
      const saved = await unwrap(api.PUT('/api/v1/settings/currency', { body }));
      show(saved);
      void message.success(t('common.saved'));
      if (saved.currency !== before) void refresh();
    } catch (e) {
      setError(errorMessage(e));
    }
  }
  const change = (i: number, row: Partial<RateRow>) => setRates((rs) => rs.map((r, n) => (n === i ? { ...r, ...row } : r)));
  return (
    <Card size="small" title={t('settings.currency')} extra={editable && <Button size="small" type="primary" onClick={save} disabled={!loaded} data-testid="save-currency">{t('common.save')}</Button>}>
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 8 }} />}
      <Typography.Paragraph type="secondary">{t('settings.currencyHelp')}</Typography.Paragraph>
      <Space orientation="vertical" style={{ width: '100%' }}>
        <Space>
          <label htmlFor="tenant-currency">{t('settings.tenantCurrency')}</label>
          <Input id="tenant-currency" value={currency} maxLength={3} onChange={(e) => setCurrency(e.target.value.toUpperCase())} disabled={!editable} style={{ width: 90 }} />
        </Space>
        {rates.map((r, i) => (
          <Space key={i} data-testid="rate-row">
            <Input aria-label={t('settings.rateCurrency')} placeholder="USD" value={r.code} maxLength={3} onChange={(e) => change(i, { code: e.target.value.toUpperCase() })} disabled={!editable} style={{ width: 90 }} />
            <InputNumber aria-label={t('settings.rate')} placeholder="7.1" value={r.rate} min={0} onChange={(v) => change(i, { rate: v })} disabled={!editable} style={{ width: 160 }} />
            {editable && (
              <Button size="small" onClick={() => setRates((rs) => rs.filter((_, n) => n !== i))}>
                {t('settings.removeRate')}
              </Button>
            )}
          </Space>
        ))}
        {editable && (
          <Button size="small" onClick={() => setRates((rs) => [...rs, { code: '', rate: null }])} data-testid="add-rate">
            {t('settings.addRate')}
          </Button>
        )}
      </Space>
    </Card>
  );
}

/** Quiet hours: sandbox messages (later e-mail and SMS) and reminders wait them out. */
function QuietHoursCard({ editable }: { editable: boolean }) {
  const { t } = useLocale();
  const { message } = App.useApp();
  const [hours, setHours] = useState<{ enabled: boolean; start: string; end: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    unwrap(api.GET('/api/v1/settings/quiet-hours'))
      .then(setHours)
      .catch((e) => setError(errorMessage(e)));
  }, []);
  async function save() {
    if (!hours) return;
    setError(null);
    try {
      setHours(await unwrap(api.PUT('/api/v1/settings/quiet-hours', { body: hours })));
      void message.success(t('common.saved'));
    } catch (e) {
      setError(errorMessage(e));
    }
  }
  return (
    <Card size="small" title={t('settings.quietHours')} data-testid="quiet-hours"
      extra={editable && <Button size="small" type="primary" onClick={save} disabled={!hours} data-testid="save-quiet-hours">{t('common.save')}</Button>}>
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 8 }} />}
      <Typography.Paragraph type="secondary">{t('settings.quietHoursHelp')}</Typography.Paragraph>
      {hours && (
        <Space wrap>
          <Switch checked={hours.enabled} onChange={(enabled) => setHours({ ...hours, enabled })} disabled={!editable} aria-label={t('settings.quietHours')} data-testid="quiet-hours-enabled" />
          <Input aria-label={t('settings.quietFrom')} value={hours.start} maxLength={5} placeholder="21:00" onChange={(e) => setHours({ ...hours, start: e.target.value })} disabled={!editable} style={{ width: 90 }} data-testid="quiet-hours-start" />
          <span>–</span>
          <Input aria-label={t('settings.quietTo')} value={hours.end} maxLength={5} placeholder="09:00" onChange={(e) => setHours({ ...hours, end: e.target.value })} disabled={!editable} style={{ width: 90 }} data-testid="quiet-hours-end" />
        </Space>
      )}
    </Card>
  );
}

function ScoreSettings({ which, title, editable }: { which: 'rfm' | 'lifecycle' | 'koc'; title: MessageKey; editable: boolean }) {
  const { t } = useLocale();
  const { message } = App.useApp();
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    unwrap(api.GET('/api/v1/score-settings/{key}', { params: { path: { key: which } } }))
      .then((v) => setText(JSON.stringify(v, null, 2)))
      .catch((e) => setError(errorMessage(e)));
  }, [which]);
  async function save() {
    setError(null);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      setError(errorMessage(e));
      return;
    }
    try {
      const saved = await unwrap(api.PUT('/api/v1/score-settings/{key}', { params: { path: { key: which } }, body }));
      setText(JSON.stringify(saved, null, 2));
      void message.success(t('common.saved'));
    } catch (e) {
      setError(errorMessage(e));
    }
  }
  return (
    <Card size="small" title={t(title)} extra={editable && <Button size="small" type="primary" onClick={save}>{t('common.save')}</Button>}>
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 8 }} />}
      <Input.TextArea aria-label={t(title)} value={text} onChange={(e) => setText(e.target.value)} readOnly={!editable} autoSize={{ minRows: 6, maxRows: 20 }} style={{ fontFamily: 'ui-monospace, monospace' }} />
    </Card>
  );
}
