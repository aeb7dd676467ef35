// Channels: the tenant's WeCom connectors. Per connector its health (a revoked secret
// shows here first, as WeCom's error), the callback URL to paste into WeCom's admin,
// its sync (asked here, followed live while it waits or runs, with what it brought and
// the APIs WeCom paused), and the mapping of WeCom departments onto units. Admins
// (settings.write) create, edit and delete connectors; secrets go in and never come out.
import { CheckCircleOutlined, CloseCircleOutlined, ExclamationCircleOutlined, MinusCircleOutlined, PlusOutlined, SyncOutlined } from '@ant-design/icons';
import { Alert, App, AutoComplete, Button, Card, Descriptions, Divider, Empty, Form, Input, InputNumber, Modal, Popconfirm, Select, Space, Spin, Table, Tabs, Tag, Typography } from 'antd';
import type { FormInstance } from 'antd';
import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { api, ApiError, errorMessage, unwrap, type Schemas } from '../api/client';
import { JobStateTag, jobLive } from '../components/JobProgress';
import { formatNumber, formatTime } from '../format';
import { useLocale, type MessageKey } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';

type Connector = Schemas['ConnectorView'];
type Job = Schemas['Job'];
type Unit = Schemas['Unit'];
type Department = Schemas['WecomDepartment'];
type SyncScope = Schemas['SyncScope'];
type DepartmentRow = { department: Department; depth: number; department_id: number };

/** A WeCom connector's settings that may be shown (the API's `config`). */
type WecomSettings = {
  corp_id: string;
  agent_id?: number | null;
  api_base_url: string;
  welcome?: string | null;
  member_role: string;
  member_scope: string;
};

/** What the form edits: the settings, and the secrets (empty when kept). */
type FormValues = {
  name: string;
  config: {
    corp_id: string;
    agent_id?: number | null;
    secret?: string;
    token?: string;
    encoding_aes_key?: string;
    api_base_url?: string;
    welcome?: string;
    member_role?: string;
    member_scope?: string;
  };
};

const SCOPES = ['own', 'unit_subtree', 'tenant'];
// the fields of the form, as a 422 names them
const FORM_FIELDS = ['name', ...['corp_id', 'agent_id', 'secret', 'token', 'encoding_aes_key', 'api_base_url', 'welcome', 'member_role', 'member_scope'].map((f) => `config.${f}`)];
const POLL_MS = 2000;

// text and background of each health's tag, at WCAG AA contrast
const HEALTH: Record<Health, { colours: [string, string]; icon: ReactNode }> = {
  ok: { colours: ['#237804', '#f6ffed'], icon: <CheckCircleOutlined /> },
  warning: { colours: ['#ad4e00', '#fff7e6'], icon: <ExclamationCircleOutlined /> },
  error: { colours: ['#cf1322', '#fff1f0'], icon: <CloseCircleOutlined /> },
  unknown: { colours: ['#525252', '#f5f5f5'], icon: <MinusCircleOutlined /> },
};

type Health = 'ok' | 'warning' | 'error' | 'unknown';

/** Unhealthy after a configuration error; a warning while the last call failed (the
 * network, WeCom busy); unknown before any call. */
function healthOf(c: Connector): Health {
  const h = c.health;
  if (!h.healthy) return 'error';
  const failed = h.last_error_at ? Date.parse(h.last_error_at) : null;
  const worked = h.last_success_at ? Date.parse(h.last_success_at) : null;
  if (failed !== null && (worked === null || failed >= worked)) return 'warning';
  if (worked === null) return 'unknown';
  return 'ok';
}

function settingsOf(c: Connector): WecomSettings {
  return c.config as unknown as WecomSettings;
}

export function ChannelsPage() {
  const { t } = useLocale();
  const { can } = useSession();
  const editable = can('settings.write');
  const connectors = useApi(() => unwrap(api.GET('/api/v1/connectors')), []);
  const units = useApi(async () => (can('units.read') ? (await unwrap(api.GET('/api/v1/units', { params: { query: { limit: 500 } } }))).items : []), [can]);
  const roles = useApi(async () => (can('roles.read') ? (await unwrap(api.GET('/api/v1/roles', { params: { query: { limit: 200 } } }))).items.map((r) => r.name) : []), [can]);
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Connector | null>(null);
  const [error, setError] = useState<string | null>(null);
  const list = connectors.data ?? [];

  async function remove(c: Connector) {
    setError(null);
    try {
      await unwrap(api.DELETE('/api/v1/connectors/{id}', { params: { path: { id: c.id } } }));
      await connectors.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }} data-testid="channels-page">
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('nav.channels')}
        </Typography.Title>
        {editable && (
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)} data-testid="new-connector">
            {t('common.create')}
          </Button>
        )}
      </Space>
      <Typography.Text type="secondary">{t('channels.intro')}</Typography.Text>
      {(error || connectors.error) && <Alert type="error" showIcon title={error ?? connectors.error} role="alert" />}
      {connectors.loading && !connectors.data ? (
        <Spin />
      ) : list.length === 0 ? (
        <Empty description={t('channels.none')} />
      ) : (
        list.map((c) => (
          <ConnectorCard
            key={c.id}
            connector={c}
            editable={editable}
            units={units.data ?? []}
            onChanged={connectors.reload}
            onEdit={() => setEditing(c)}
            onDelete={() => remove(c)}
          />
        ))
      )}
      <ConnectorModal
        open={creating}
        title={t('channels.new')}
        roles={roles.data ?? []}
        onClose={() => setCreating(false)}
        submit={async (v) => {
          await unwrap(api.POST('/api/v1/connectors', { body: { kind: 'wecom', name: v.name, config: createBody(v) } }));
          void connectors.reload();
        }}
      />
      <ConnectorModal
        key={editing?.id ?? 'none'}
        open={editing !== null}
        editing={editing}
        title={editing ? `${t('common.edit')} · ${editing.name}` : ''}
        roles={roles.data ?? []}
        onClose={() => setEditing(null)}
        submit={async (v) => {
          if (!editing) return;
          await unwrap(api.PATCH('/api/v1/connectors/{id}', { params: { path: { id: editing.id } }, body: { name: v.name, config: changeBody(v) } }));
          void connectors.reload();
        }}
      />
    </Space>
  );
}

/** The `config` of a new connector: what was filled in (empty optional fields left out,
 * for the server's defaults). */
function createBody(v: FormValues): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(v.config)) {
    if (value === undefined || value === null) continue;
    if (typeof value === 'string' && value.trim() === '') continue;
    config[key] = value;
  }
  return config;
}

/** The `config` of a change: every setting as shown (cleared optional ones as null), and
 * only the secrets typed in (those left empty keep their value). */
function changeBody(v: FormValues): Record<string, unknown> {
  const c = v.config;
  const config: Record<string, unknown> = {
    corp_id: c.corp_id,
    agent_id: c.agent_id ?? null,
    welcome: c.welcome?.trim() ? c.welcome : null,
    member_role: c.member_role?.trim() || null,
    member_scope: c.member_scope || null,
  };
  if (c.api_base_url?.trim()) config.api_base_url = c.api_base_url;
  for (const secret of ['secret', 'token', 'encoding_aes_key'] as const) {
    if (c[secret]?.trim()) config[secret] = c[secret];
  }
  return config;
}

/** The create and edit dialog. A 422's message shows under the field it names
 * (`name`, `config.encoding_aes_key`); any other error above the form. */
function ConnectorModal({
  open,
  title,
  editing,
  roles,
  onClose,
  submit,
}: {
  open: boolean;
  title: string;
  editing?: Connector | null;
  roles: string[];
  onClose: () => void;
  submit: (v: FormValues) => Promise<unknown>;
}) {
  const { t } = useLocale();
  const [form] = Form.useForm<FormValues>();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const initialValues = useMemo<Partial<FormValues>>(() => {
    if (!editing) return { config: { corp_id: '', member_scope: 'own' } };
    const s = settingsOf(editing);
    return {
      name: editing.name,
      config: {
        corp_id: s.corp_id,
        agent_id: s.agent_id ?? null,
        api_base_url: s.api_base_url,
        welcome: s.welcome ?? '',
        member_role: s.member_role,
        member_scope: s.member_scope,
      },
    };
  }, [editing]);

  async function finish(values: FormValues) {
    setBusy(true);
    setError(null);
    try {
      await submit(values);
      form.resetFields();
      onClose();
    } catch (e) {
      setError(showFieldErrors(form, e));
    } finally {
      setBusy(false);
    }
  }

  function close() {
    setError(null);
    form.resetFields();
    onClose();
  }

  const secretHelp = editing ? t('channels.keepSecret') : undefined;
  const secretRules = editing ? [] : [{ required: true }];
  return (
    <Modal open={open} title={title} onCancel={close} onOk={() => form.submit()} confirmLoading={busy} okText={t('common.save')} cancelText={t('common.cancel')} destroyOnHidden width={640}>
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 12 }} />}
      <Form form={form} layout="vertical" onFinish={finish} initialValues={initialValues} data-testid="connector-form">
        <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
          <Input maxLength={100} />
        </Form.Item>
        <Form.Item name={['config', 'corp_id']} label={t('channels.corpId')} rules={[{ required: true }]}>
          <Input placeholder="ww0123456789abcdef" autoComplete="off" />
        </Form.Item>
        <Form.Item name={['config', 'agent_id']} label={t('channels.agentId')}>
          <InputNumber min={1} precision={0} style={{ width: '100%' }} placeholder="1000002" />
        </Form.Item>
        <Typography.Paragraph type="secondary">{t('channels.secretsHelp')}</Typography.Paragraph>
        <Form.Item name={['config', 'secret']} label={t('channels.secret')} rules={secretRules} extra={secretHelp}>
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item name={['config', 'token']} label={t('channels.token')} rules={secretRules} extra={secretHelp}>
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item name={['config', 'encoding_aes_key']} label={t('channels.aesKey')} rules={secretRules} extra={secretHelp}>
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Divider titlePlacement="start" plain>
          {t('channels.advanced')}
        </Divider>
        <Form.Item name={['config', 'member_role']} label={t('channels.memberRole')}>
          <AutoComplete options={roles.map((r) => ({ value: r }))} placeholder="service" />
        </Form.Item>
        <Form.Item name={['config', 'member_scope']} label={t('channels.memberScope')}>
          <Select options={SCOPES.map((s) => ({ value: s, label: t(`channels.scope.${s}` as MessageKey) }))} />
        </Form.Item>
        <Form.Item name={['config', 'welcome']} label={t('channels.welcome')}>
          <Input.TextArea autoSize={{ minRows: 2, maxRows: 6 }} />
        </Form.Item>
        <Form.Item name={['config', 'api_base_url']} label={t('channels.apiBaseUrl')} extra={t('channels.apiBaseUrlHelp')}>
          <Input placeholder="https://qyapi.weixin.qq.com" autoComplete="off" />
        </Form.Item>
      </Form>
    </Modal>
  );
}

/** Puts a 422's messages under the fields they name; answers what is left to show above
 * the form (null when every message found its field). */
function showFieldErrors(form: FormInstance<FormValues>, e: unknown): string | null {
  if (!(e instanceof ApiError) || e.fields.length === 0) return errorMessage(e);
  const rest: string[] = [];
  const shown: { name: string[]; errors: string[] }[] = [];
  for (const f of e.fields) {
    if (FORM_FIELDS.includes(f.field)) shown.push({ name: f.field.split('.'), errors: [f.message] });
    else rest.push(`${f.field}: ${f.message}`);
  }
  form.setFields(shown as Parameters<typeof form.setFields>[0]);
  return rest.length ? rest.join('; ') : null;
}

function HealthTag({ connector }: { connector: Connector }) {
  const { t } = useLocale();
  const health = healthOf(connector);
  const { colours, icon } = HEALTH[health];
  return (
    <Tag icon={icon} title={t('channels.health')} data-testid={`connector-health-${connector.id}`} data-health={health} style={{ color: colours[0], background: colours[1], borderColor: colours[0] }}>
      {t(`channels.health.${health}` as MessageKey)}
    </Tag>
  );
}

function ConnectorCard({
  connector: c,
  editable,
  units,
  onChanged,
  onEdit,
  onDelete,
}: {
  connector: Connector;
  editable: boolean;
  units: Unit[];
  onChanged: () => Promise<void>;
  onEdit: () => void;
  onDelete: () => Promise<void>;
}) {
  const { t, locale } = useLocale();
  const settings = settingsOf(c);
  const health = healthOf(c);
  const callbackUrl = window.location.origin + c.callback_path;
  // counts the syncs seen to finish: the departments are read again after each
  const [synced, setSynced] = useState(0);
  const finished = useCallback(() => setSynced((n) => n + 1), []);
  return (
    <Card
      data-testid={`connector-${c.id}`}
      title={
        <Space wrap>
          <span data-testid="connector-name">{c.name}</span>
          <Tag>{t('channels.wecom')}</Tag>
          <HealthTag connector={c} />
        </Space>
      }
      extra={
        editable && (
          <Space>
            <Button size="small" onClick={onEdit} data-testid={`edit-connector-${c.id}`}>
              {t('common.edit')}
            </Button>
            <Popconfirm title={t('channels.confirmDelete', { name: c.name })} onConfirm={onDelete} okButtonProps={{ danger: true }}>
              <Button size="small" danger data-testid={`delete-connector-${c.id}`}>
                {t('common.delete')}
              </Button>
            </Popconfirm>
          </Space>
        )
      }
    >
      {health === 'error' && (
        <Alert
          type="error"
          showIcon
          role="alert"
          style={{ marginBottom: 16 }}
          title={t('channels.unhealthy')}
          description={
            <>
              <Typography.Text strong data-testid={`connector-error-${c.id}`}>
                {c.health.last_error}
              </Typography.Text>
              <div>{t('channels.unhealthyHelp')}</div>
            </>
          }
        />
      )}
      {health === 'warning' && (
        <Alert
          type="warning"
          showIcon
          style={{ marginBottom: 16 }}
          title={t('channels.recentError')}
          description={<Typography.Text data-testid={`connector-error-${c.id}`}>{c.health.last_error}</Typography.Text>}
        />
      )}
      <Descriptions size="small" column={{ xs: 1, md: 2, xl: 3 }} style={{ marginBottom: 8 }}>
        <Descriptions.Item label={t('channels.corpId')}>
          <code>{settings.corp_id}</code>
        </Descriptions.Item>
        <Descriptions.Item label={t('channels.agentId')}>{settings.agent_id ?? '—'}</Descriptions.Item>
        <Descriptions.Item label={t('channels.memberRole')}>
          {settings.member_role} · {t(`channels.scope.${settings.member_scope}` as MessageKey)}
        </Descriptions.Item>
        <Descriptions.Item label={t('channels.lastSuccess')}>{formatTime(locale, c.health.last_success_at)}</Descriptions.Item>
        <Descriptions.Item label={t('channels.lastError')}>{formatTime(locale, c.health.last_error_at)}</Descriptions.Item>
        <Descriptions.Item label={t('channels.apiBaseUrl')}>
          <code>{settings.api_base_url}</code>
        </Descriptions.Item>
      </Descriptions>
      <div style={{ marginBottom: 8 }}>
        <Typography.Text strong>{t('channels.callbackUrl')}: </Typography.Text>
        <Typography.Text code copyable={{ text: callbackUrl }} data-testid={`callback-url-${c.id}`}>
          {callbackUrl}
        </Typography.Text>
        <div>
          <Typography.Text type="secondary">{t('channels.callbackHelp')}</Typography.Text>
        </div>
      </div>
      <Tabs
        items={[
          { key: 'sync', label: t('channels.sync'), children: <SyncPanel connector={c} editable={editable} onChanged={onChanged} onFinished={finished} /> },
          { key: 'departments', label: t('channels.departments'), children: <DepartmentsPanel connector={c} editable={editable} units={units} synced={synced} /> },
        ]}
      />
    </Card>
  );
}

/** The newest sync job of a connector among the tenant's jobs (with jobs.read): shown
 * after a reload even when it never reached the customer part (the overview's job). */
async function newestSyncJob(connector: number): Promise<Job | null> {
  const jobs = await unwrap(api.GET('/api/v1/jobs', { params: { query: { kind: 'wecom.sync', limit: 50 } } }));
  return jobs.items.find((j) => (j.payload as { connector_id?: number } | null)?.connector_id === connector) ?? null;
}

function SyncPanel({ connector, editable, onChanged, onFinished }: { connector: Connector; editable: boolean; onChanged: () => Promise<void>; onFinished: () => void }) {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const { message } = App.useApp();
  const id = connector.id;
  const overview = useApi(() => unwrap(api.GET('/api/v1/connectors/{id}/sync', { params: { path: { id } } })), [id]);
  // the job this page asked for (or found), followed while it waits or runs
  const [followed, setFollowed] = useState<Job | null>(null);
  const [asking, setAsking] = useState<SyncScope | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!can('jobs.read')) return;
    newestSyncJob(id)
      .then((job) => job && setFollowed((f) => (f && f.id >= job.id ? f : job)))
      .catch(() => undefined);
  }, [id, can]);

  const fromOverview = overview.data?.job ?? null;
  const job = followed && (!fromOverview || followed.id >= fromOverview.id) ? followed : fromOverview;
  const live = jobLive(job);

  const refresh = useCallback(async () => {
    if (followed) {
      try {
        const current = await unwrap(api.GET('/api/v1/jobs/{id}', { params: { path: { id: followed.id } } }));
        setFollowed(current);
      } catch (e) {
        // a job this role may not read: the overview's job is shown instead
        if (e instanceof ApiError && (e.status === 403 || e.status === 404)) setFollowed(null);
      }
    }
    await Promise.all([overview.reload(), onChanged()]);
  }, [followed, overview, onChanged]);

  const wasLive = useRef(false);
  useEffect(() => {
    if (wasLive.current && !live) onFinished();
    wasLive.current = live;
  }, [live, onFinished]);

  useEffect(() => {
    if (!live) return;
    const timer = window.setInterval(() => void refresh(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [live, refresh]);

  async function ask(scope: SyncScope) {
    setAsking(scope);
    setError(null);
    try {
      const asked = await unwrap(api.POST('/api/v1/connectors/{id}/sync', { params: { path: { id } }, body: { scope } }));
      if (!asked.created) void message.info(t('channels.syncFollowing'));
      const current = await unwrap(api.GET('/api/v1/jobs/{id}', { params: { path: { id: asked.job_id } } }));
      setFollowed(current);
      // a short sync may be over already: nothing would be polled for what it did
      if (!jobLive(current)) onFinished();
      await Promise.all([overview.reload(), onChanged()]);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setAsking(null);
    }
  }

  const data = overview.data;
  const counts = data?.counts;
  const customers = data?.customers;
  return (
    <Space orientation="vertical" size={12} style={{ width: '100%' }} data-testid={`sync-${id}`}>
      {editable && (
        <Space wrap>
          <Button type="primary" icon={<SyncOutlined />} loading={asking === 'all'} onClick={() => ask('all')} data-testid={`sync-all-${id}`}>
            {t('channels.syncAll')}
          </Button>
          <Button loading={asking === 'staff'} onClick={() => ask('staff')} data-testid={`sync-staff-${id}`}>
            {t('channels.syncStaff')}
          </Button>
          <Button loading={asking === 'customers'} onClick={() => ask('customers')} data-testid={`sync-customers-${id}`}>
            {t('channels.syncCustomers')}
          </Button>
        </Space>
      )}
      {(error || overview.error) && <Alert type="error" showIcon title={error ?? overview.error} role="alert" />}
      {job ? <SyncJob job={job} /> : <Typography.Text type="secondary">{t('channels.syncNone')}</Typography.Text>}
      {customers && (
        <Typography.Text type="secondary" data-testid={`last-customer-sync-${id}`}>
          {t('channels.lastCustomerSync')}:{' '}
          {t('channels.lastCustomerSyncText', {
            start: formatTime(locale, customers.started_at),
            end: formatTime(locale, customers.finished_at),
            n: formatNumber(locale, customers.items),
          })}
        </Typography.Text>
      )}
      {counts && (
        <Descriptions size="small" title={t('channels.counts')} column={{ xs: 2, md: 4 }} data-testid={`counts-${id}`}>
          {(['members', 'members_left', 'departments', 'mirrored_tags', 'contacts', 'customers', 'relations', 'relations_ended', 'group_chats', 'chat_customers'] as const).map((k) => (
            <Descriptions.Item key={k} label={t(`channels.count.${k}` as MessageKey)}>
              <span data-testid={`count-${k}`}>{formatNumber(locale, counts[k])}</span>
            </Descriptions.Item>
          ))}
        </Descriptions>
      )}
      {data && data.paused.length > 0 && (
        <>
          <Typography.Text strong>{t('channels.paused')}</Typography.Text>
          <Table
            rowKey="api"
            size="small"
            pagination={false}
            dataSource={data.paused}
            data-testid={`paused-${id}`}
            columns={[
              { title: t('channels.pausedApi'), dataIndex: 'api', render: (a: string) => <code>{a}</code> },
              {
                title: t('channels.pausedUntil'),
                dataIndex: 'until',
                render: (u: string) => (
                  <>
                    {formatTime(locale, u)}
                    {Date.parse(u) < Date.now() && <Typography.Text type="secondary"> ({t('channels.pauseOver')})</Typography.Text>}
                  </>
                ),
              },
              { title: t('channels.pausedStrikes'), dataIndex: 'strikes', align: 'right' },
              { title: t('channels.pausedReason'), dataIndex: 'reason', ellipsis: true },
            ]}
          />
        </>
      )}
    </Space>
  );
}

/** A sync job as it stands: its state and try, relations synced so far, and when it
 * failed, why and when it is tried again. */
function SyncJob({ job }: { job: Job }) {
  const { t, locale } = useLocale();
  const retrying = job.state === 'waiting' && job.attempts > 0 && !!job.last_error;
  const wait = Math.round((Date.parse(job.run_at) - Date.now()) / 1000);
  return (
    <div data-testid={`sync-job-${job.id}`} data-state={job.state}>
      <Space wrap>
        <Typography.Text>{t('channels.syncJob', { id: job.id })}</Typography.Text>
        <JobStateTag job={job} />
        {(job.attempts > 1 || (job.attempts > 0 && job.state !== 'done')) && <Typography.Text type="secondary">{t('channels.attempt', { n: job.attempts, max: job.max_attempts })}</Typography.Text>}
        <Typography.Text data-testid="relations-done">{t('channels.relationsDone', { n: formatNumber(locale, job.progress.done) })}</Typography.Text>
        {retrying && (
          <Typography.Text type="warning" data-testid="sync-retry">
            {wait > 0 && wait < 120 ? t('channels.retryIn', { s: wait }) : t('channels.retryAt', { time: formatTime(locale, job.run_at) })}
          </Typography.Text>
        )}
        {job.finished_at && <Typography.Text type="secondary">{t('channels.finishedAt', { time: formatTime(locale, job.finished_at) })}</Typography.Text>}
      </Space>
      {job.state === 'running' && job.progress.message && (
        <div>
          <Typography.Text type="secondary">
            <SyncOutlined spin /> {job.progress.message}
          </Typography.Text>
        </div>
      )}
      {job.last_error && job.state !== 'done' && (
        <div>
          <Typography.Text type={job.state === 'dead' ? 'danger' : 'warning'}>
            {t('jobs.lastError')}: <span data-testid="sync-error">{job.last_error}</span>
          </Typography.Text>
        </div>
      )}
    </div>
  );
}

/** WeCom's departments as a tree-ordered table, each with the unit its members join. */
function DepartmentsPanel({ connector, editable, units, synced }: { connector: Connector; editable: boolean; units: Unit[]; synced: number }) {
  const { t } = useLocale();
  const id = connector.id;
  const departments = useApi(() => unwrap(api.GET('/api/v1/connectors/{id}/departments', { params: { path: { id } } })), [id, synced]);
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState<number | null>(null);
  const rows = useMemo(() => treeOrder(departments.data ?? []), [departments.data]);
  const byId = useMemo(() => new Map((departments.data ?? []).map((d) => [d.department_id, d])), [departments.data]);
  const unitName = (unit: number) => units.find((u) => u.id === unit)?.name ?? `#${unit}`;
  const root = units.find((u) => u.parent_id == null);

  /** The unit an unmapped department's members join: its nearest mapped parent's. */
  function inherited(d: Department): string {
    let parent = byId.get(d.parent_id);
    for (let hops = 0; parent && hops < 100; hops++) {
      if (parent.unit_id != null) return unitName(parent.unit_id);
      parent = byId.get(parent.parent_id);
    }
    return root ? root.name : '—';
  }

  async function map(d: Department, unit: number | null) {
    setSaving(d.department_id);
    setError(null);
    try {
      const saved = await unwrap(api.PATCH('/api/v1/connectors/{id}/departments/{department_id}', { params: { path: { id, department_id: d.department_id } }, body: { unit_id: unit } }));
      departments.setData((list) => list?.map((x) => (x.department_id === saved.department_id ? saved : x)));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setSaving(null);
    }
  }

  if (!departments.loading && rows.length === 0 && !departments.error) {
    return <Typography.Text type="secondary">{t('channels.departmentsNone')}</Typography.Text>;
  }
  return (
    <Space orientation="vertical" size={8} style={{ width: '100%' }}>
      <Typography.Text type="secondary">{t('channels.departmentsHelp')}</Typography.Text>
      {(error || departments.error) && <Alert type="error" showIcon title={error ?? departments.error} role="alert" />}
      <Table<DepartmentRow>
        rowKey="department_id"
        size="small"
        loading={departments.loading && !departments.data}
        dataSource={rows}
        pagination={rows.length > 50 ? { pageSize: 50 } : false}
        columns={[
          {
            title: t('channels.department'),
            key: 'name',
            render: (_: unknown, r) => (
              <span style={{ paddingLeft: r.depth * 16 }}>
                {r.department.name} <Typography.Text type="secondary">#{r.department.department_id}</Typography.Text>
              </span>
            ),
          },
          {
            title: t('channels.mappedUnit'),
            key: 'unit',
            width: 320,
            render: (_: unknown, r) => (
              <Select
                aria-label={`${t('channels.mappedUnit')}: ${r.department.name}`}
                data-testid={`department-unit-${r.department.department_id}`}
                value={r.department.unit_id ?? undefined}
                placeholder={t('channels.inherits', { unit: inherited(r.department) })}
                allowClear
                showSearch={{ optionFilterProp: 'label' }}
                disabled={!editable}
                loading={saving === r.department.department_id}
                onChange={(v: number | undefined) => void map(r.department, v ?? null)}
                options={units.map((u) => ({ value: u.id, label: u.name }))}
                style={{ width: '100%' }}
              />
            ),
          },
        ]}
      />
    </Space>
  );
}

/** Departments parent first, each with its depth (a department whose parent is not
 * listed starts a tree of its own). */
function treeOrder(list: Department[]): DepartmentRow[] {
  const ids = new Set(list.map((d) => d.department_id));
  const children = new Map<number, Department[]>();
  for (const d of list) {
    const parent = ids.has(d.parent_id) && d.parent_id !== d.department_id ? d.parent_id : -1;
    children.set(parent, [...(children.get(parent) ?? []), d]);
  }
  const out: DepartmentRow[] = [];
  const visit = (parent: number, depth: number) => {
    for (const d of (children.get(parent) ?? []).sort((a, b) => a.department_id - b.department_id)) {
      if (out.length > list.length) return;
      out.push({ department: d, depth, department_id: d.department_id });
      visit(d.department_id, depth + 1);
    }
  };
  visit(-1, 0);
  return out;
}
