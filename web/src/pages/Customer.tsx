// One customer: identities, traits, tags, scores, owner, orders, timeline, notes and
// consent, with the quick replies beside them. Phone and email stay masked until
// someone allowed to reveal them asks; the reveal is audited by the API.
import { EyeOutlined } from '@ant-design/icons';
import {
  Alert,
  App,
  Button,
  Card,
  Col,
  Descriptions,
  Empty,
  Form,
  Input,
  List,
  Row,
  Select,
  Space,
  Spin,
  Table,
  Tabs,
  Tag,
  Timeline,
  Typography,
} from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { useParams } from 'react-router';
import { ColourTag } from '../components/ColourTag';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { formatMoney, formatNumber, formatTime } from '../format';
import { useLocale } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';
import { channelName, stageName } from './Dashboard';
import { QuickRepliesPanel } from './QuickReplies';

/** A new customer id is a new page: nothing (a reveal, a timeline) carries over. */
export function CustomerPage() {
  const id = Number(useParams().id);
  return <CustomerView key={id} id={id} />;
}

function CustomerView({ id }: { id: number }) {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const [reveal, setReveal] = useState(false);
  const customer = useApi(() => unwrap(api.GET('/api/v1/customers/{id}', { params: { path: { id }, query: { reveal } } })), [id, reveal]);
  const scores = useApi(() => unwrap(api.GET('/api/v1/customers/{id}/scores', { params: { path: { id } } })), [id]);
  const ownerId = customer.data?.owner_staff_id;
  const owner = useApi(
    () => (ownerId && can('staff.read') ? unwrap(api.GET('/api/v1/staff/{id}', { params: { path: { id: ownerId } } })) : Promise.resolve(null)),
    [ownerId],
  );

  if (customer.error) return <Alert type="error" showIcon title={customer.error} role="alert" />;
  const c = customer.data;
  if (!c) return <Spin />;
  const rfm = scores.data?.rfm as { class?: string; name?: string; r?: number; f?: number; m?: number } | null | undefined;

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space align="center" style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }} data-testid="customer-name">
          {c.name || `#${c.id}`}
        </Typography.Title>
        {can('customers.reveal') && !c.revealed && (
          <Button icon={<EyeOutlined />} onClick={() => setReveal(true)} data-testid="reveal">
            {t('customers.reveal')}
          </Button>
        )}
        {c.revealed && <Tag color="orange">{t('customers.revealed')}</Tag>}
      </Space>
      <Row gutter={[16, 16]}>
        <Col xs={24} xl={16}>
          <Card size="small">
            <Descriptions column={{ xs: 1, md: 2, xl: 3 }} size="small">
              <Descriptions.Item label={t('customers.phone')}>
                <span data-testid="customer-phone">{c.phone ?? '—'}</span>
              </Descriptions.Item>
              <Descriptions.Item label={t('customers.email')}>{c.email ?? '—'}</Descriptions.Item>
              <Descriptions.Item label={t('customers.owner')}>{owner.data ? `${owner.data.name} (${owner.data.email})` : c.owner_staff_id ? `#${c.owner_staff_id}` : '—'}</Descriptions.Item>
              <Descriptions.Item label={t('customers.firstSeen')}>{formatTime(locale, c.first_seen_at)}</Descriptions.Item>
              <Descriptions.Item label={t('customers.lastSeen')}>{formatTime(locale, c.last_seen_at)}</Descriptions.Item>
              <Descriptions.Item label={t('customers.orderCount')}>{formatNumber(locale, c.orders.count)}</Descriptions.Item>
              <Descriptions.Item label={t('customers.total')}>{formatMoney(locale, c.orders.total)}</Descriptions.Item>
              <Descriptions.Item label={t('customers.aov')}>{formatMoney(locale, c.orders.average)}</Descriptions.Item>
            </Descriptions>
          </Card>
        </Col>
        <Col xs={24} xl={8}>
          <Card size="small" title={t('customers.scores')} data-testid="scores">
            <Descriptions column={1} size="small">
              <Descriptions.Item label={t('customers.rfm')}>{rfm ? `${locale === 'zh' ? rfm.name : rfm.class} (R${rfm.r} F${rfm.f} M${rfm.m})` : '—'}</Descriptions.Item>
              <Descriptions.Item label={t('customers.stage')}>{scores.data ? stageName(locale, scores.data.lifecycle) : '—'}</Descriptions.Item>
              <Descriptions.Item label={t('customers.valueTier')}>
                {scores.data?.value_tier ?? '—'}
                {scores.data?.koc && <Tag color="purple" style={{ marginLeft: 8 }}>KOC</Tag>}
              </Descriptions.Item>
            </Descriptions>
          </Card>
          {can('content.read') && (
            <div style={{ marginTop: 16 }}>
              <QuickRepliesPanel />
            </div>
          )}
        </Col>
      </Row>
      <CustomerTags id={id} />
      <Card size="small">
        <Tabs
          items={[
            { key: 'timeline', label: t('customers.timeline'), children: <CustomerTimeline id={id} /> },
            { key: 'identities', label: t('customers.identities'), children: <Identities customer={c} /> },
            { key: 'traits', label: t('customers.traits'), children: <Traits traits={c.traits as Record<string, unknown>} /> },
            { key: 'orders', label: t('customers.orders'), children: <Orders id={id} /> },
            { key: 'notes', label: t('customers.notes'), children: <Notes id={id} /> },
            { key: 'consent', label: t('customers.consent'), children: <ConsentPanel id={id} /> },
          ]}
        />
      </Card>
    </Space>
  );
}

function CustomerTags({ id }: { id: number }) {
  const { t } = useLocale();
  const { can } = useSession();
  const { message } = App.useApp();
  const tags = useApi(() => unwrap(api.GET('/api/v1/customers/{id}/tags', { params: { path: { id } } })), [id]);
  const all = useApi(() => unwrap(api.GET('/api/v1/tags')), []);
  const [adding, setAdding] = useState<number | undefined>();
  const [error, setError] = useState<string | null>(null);

  async function change(add: number[], remove: number[]) {
    setError(null);
    try {
      const next = await unwrap(api.POST('/api/v1/customers/{id}/tags', { params: { path: { id } }, body: { add, remove, reason: 'console' } }));
      tags.setData(next);
      setAdding(undefined);
      void message.success(t('common.saved'));
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  const have = new Set((tags.data ?? []).map((x) => x.tag_id));
  return (
    <Card size="small" title={t('customers.tags')} data-testid="customer-tags">
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 8 }} />}
      <Space wrap>
        {(tags.data ?? []).map((tag) => (
          <ColourTag
            key={tag.tag_id}
            colour={tag.colour}
            closable={can('tags.write')}
            onClose={(e) => {
              e.preventDefault();
              void change([], [tag.tag_id]);
            }}
            title={`${tag.origin} · ${tag.added_by}${tag.reason ? ' · ' + tag.reason : ''}`}
          >
            {tag.name}
          </ColourTag>
        ))}
        {(tags.data ?? []).length === 0 && <Typography.Text type="secondary">{t('common.empty')}</Typography.Text>}
        {can('tags.write') && (
          <Space.Compact>
            <Select
              aria-label={t('customers.addTag')}
              placeholder={t('customers.addTag')}
              style={{ width: 180 }}
              showSearch
              optionFilterProp="label"
              value={adding}
              onChange={setAdding}
              options={(all.data ?? []).filter((x) => !have.has(x.id)).map((x) => ({ value: x.id, label: x.name }))}
              data-testid="add-tag-select"
            />
            <Button type="primary" disabled={adding === undefined} onClick={() => adding !== undefined && change([adding], [])} data-testid="add-tag">
              {t('customers.addTag')}
            </Button>
          </Space.Compact>
        )}
      </Space>
    </Card>
  );
}

function Identities({ customer }: { customer: Schemas['Customer'] }) {
  const { t } = useLocale();
  return (
    <Table
      size="small"
      rowKey={(i) => i.kind + ':' + i.value}
      dataSource={customer.identities}
      pagination={false}
      columns={[
        { title: t('sources.kind'), dataIndex: 'kind' },
        { title: 'ID', dataIndex: 'value' },
      ]}
    />
  );
}

function Traits({ traits }: { traits: Record<string, unknown> }) {
  const rows = Object.entries(traits).map(([key, value]) => ({ key, value: typeof value === 'string' ? value : JSON.stringify(value) }));
  return (
    <Table
      size="small"
      rowKey="key"
      dataSource={rows}
      pagination={false}
      columns={[
        { title: 'trait', dataIndex: 'key', width: 220 },
        { title: 'value', dataIndex: 'value' },
      ]}
    />
  );
}

function Orders({ id }: { id: number }) {
  const { t, locale } = useLocale();
  const orders = useApi(() => unwrap(api.GET('/api/v1/orders', { params: { query: { customer_id: id, limit: 100 } } })), [id]);
  if (orders.error) return <Alert type="error" showIcon title={orders.error} />;
  return (
    <Table
      size="small"
      rowKey="order_id"
      loading={orders.loading}
      dataSource={orders.data?.items ?? []}
      pagination={false}
      columns={[
        { title: 'ID', dataIndex: 'order_id' },
        { title: t('sources.kind'), dataIndex: 'channel', render: (c: string) => channelName(locale, c) },
        { title: t('staff.status'), dataIndex: 'status' },
        { title: t('customers.total'), dataIndex: 'amount', align: 'right', render: (v: number, o) => formatMoney(locale, v, o.currency) },
        { title: t('audit.time'), dataIndex: 'ordered_at', render: (v: string) => formatTime(locale, v) },
      ]}
    />
  );
}

type Entry = Schemas['TimelineEntry'];

function describe(entry: Entry, locale: 'zh' | 'en'): { title: string; at: string; color: string } {
  switch (entry.kind) {
    case 'event':
      return { title: entry.name || entry.type, at: entry.timestamp, color: 'blue' };
    case 'order':
      return { title: `${entry.order_id} · ${formatMoney(locale, entry.amount, entry.currency)} · ${entry.status}`, at: entry.ordered_at, color: 'green' };
    case 'note':
      return { title: `${entry.author}: ${entry.body}`, at: entry.created_at, color: 'gray' };
    case 'merge':
      return { title: `merged #${entry.merged_id} (${entry.reason})`, at: entry.at, color: 'orange' };
  }
}

function CustomerTimeline({ id }: { id: number }) {
  const { t, locale } = useLocale();
  const [entries, setEntries] = useState<Entry[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  const load = useCallback(
    async (after?: string) => {
      setLoading(true);
      try {
        const page = await unwrap(api.GET('/api/v1/customers/{id}/timeline', { params: { path: { id }, query: { cursor: after, limit: 30 } } }));
        setEntries((old) => (after ? [...old, ...page.items] : page.items));
        setCursor(page.next_cursor ?? null);
      } catch (e) {
        setError(errorMessage(e));
      } finally {
        setLoading(false);
      }
    },
    [id],
  );
  useEffect(() => {
    void load();
  }, [load]);

  if (error) return <Alert type="error" showIcon title={error} />;
  if (!loading && entries.length === 0) return <Empty description={t('common.empty')} />;
  return (
    <div data-testid="timeline">
      <Timeline
        items={entries.map((e, n) => {
          const d = describe(e, locale);
          return { key: n, color: d.color, content: <><Typography.Text>{d.title}</Typography.Text> <Typography.Text type="secondary">{formatTime(locale, d.at)}</Typography.Text></> };
        })}
      />
      {cursor && (
        <Button onClick={() => load(cursor)} loading={loading}>
          {t('common.loadMore')}
        </Button>
      )}
    </div>
  );
}

function Notes({ id }: { id: number }) {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const notes = useApi(() => unwrap(api.GET('/api/v1/customers/{id}/notes', { params: { path: { id } } })), [id]);
  const [form] = Form.useForm<{ body: string }>();
  const [error, setError] = useState<string | null>(null);

  async function add(values: { body: string }) {
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/customers/{id}/notes', { params: { path: { id } }, body: values }));
      form.resetFields();
      void notes.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      {can('customers.write') && (
        <Form form={form} layout="inline" onFinish={add} style={{ width: '100%' }}>
          <Form.Item name="body" rules={[{ required: true, max: 5000 }]} style={{ flex: 1 }} validateStatus={error ? 'error' : undefined} help={error ?? undefined}>
            <Input.TextArea rows={2} aria-label={t('customers.addNote')} placeholder={t('customers.addNote')} />
          </Form.Item>
          <Button htmlType="submit" type="primary">
            {t('customers.addNote')}
          </Button>
        </Form>
      )}
      <List
        dataSource={notes.data ?? []}
        locale={{ emptyText: t('common.empty') }}
        renderItem={(n) => (
          <List.Item>
            <List.Item.Meta title={`${n.author} · ${formatTime(locale, n.created_at)}`} description={n.body} />
          </List.Item>
        )}
      />
    </Space>
  );
}

const CONSENT_CHANNELS = ['all', 'wecom', 'sms', 'email', 'phone', 'official_account', 'mini_program', 'app_push'];

function ConsentPanel({ id }: { id: number }) {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const consent = useApi(() => unwrap(api.GET('/api/v1/customers/{id}/consent', { params: { path: { id } } })), [id]);
  const [error, setError] = useState<string | null>(null);

  async function record(values: { channel: string; status: string; note?: string }) {
    setError(null);
    try {
      const next = await unwrap(api.POST('/api/v1/customers/{id}/consent', { params: { path: { id } }, body: { ...values, source: 'console' } }));
      consent.setData(next);
    } catch (e) {
      setError(errorMessage(e));
    }
  }
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      {can('customers.write') && (
        <Form layout="inline" onFinish={record} initialValues={{ channel: 'all', status: 'opt_out' }}>
          <Form.Item name="channel" label="channel">
            <Select style={{ width: 160 }} options={CONSENT_CHANNELS.map((c) => ({ value: c, label: c }))} />
          </Form.Item>
          <Form.Item name="status" label={t('staff.status')}>
            <Select style={{ width: 120 }} options={[{ value: 'opt_in', label: 'opt_in' }, { value: 'opt_out', label: 'opt_out' }]} />
          </Form.Item>
          <Form.Item name="note">
            <Input placeholder="note" />
          </Form.Item>
          <Button htmlType="submit">{t('common.save')}</Button>
        </Form>
      )}
      {error && <Alert type="error" showIcon title={error} role="alert" />}
      <Table
        size="small"
        rowKey={(c) => c.channel + c.at}
        dataSource={consent.data ?? []}
        pagination={false}
        columns={[
          { title: 'channel', dataIndex: 'channel' },
          { title: t('staff.status'), dataIndex: 'status', render: (s: string) => <Tag color={s === 'opt_out' ? 'red' : 'green'}>{s}</Tag> },
          { title: 'source', dataIndex: 'source' },
          { title: t('audit.actor'), dataIndex: 'recorded_by' },
          { title: t('audit.time'), dataIndex: 'at', render: (v: string) => formatTime(locale, v) },
        ]}
      />
    </Space>
  );
}
