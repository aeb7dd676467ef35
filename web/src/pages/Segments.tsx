// Segments: the list, and the builder — the segment language as text or as a form of
// clauses, with a live count as the definition changes — and a saved segment's
// members, size over time and CSV export.
import { DeleteOutlined, DownloadOutlined, PlusOutlined } from '@ant-design/icons';
import {
  Alert,
  App,
  Button,
  Card,
  Col,
  Form,
  Input,
  Popconfirm,
  Radio,
  Row,
  Segmented,
  Select,
  Space,
  Statistic,
  Table,
  Tag,
  Typography,
} from 'antd';
import { useEffect, useMemo, useRef, useState } from 'react';
import { Link, useBlocker, useNavigate, useParams } from 'react-router';
import { api, ApiError, errorMessage, unwrap, type Schemas } from '../api/client';
import { ChartCard, type ChartOption } from '../components/Chart';
import { formatNumber, formatTime } from '../format';
import { useLocale } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';

export function SegmentsPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const segments = useApi(() => unwrap(api.GET('/api/v1/segments')), []);
  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('nav.segments')}
        </Typography.Title>
        {can('segments.write') && (
          <Link to="/segments/new">
            <Button type="primary" icon={<PlusOutlined />} data-testid="new-segment">
              {t('segments.new')}
            </Button>
          </Link>
        )}
      </Space>
      {segments.error && <Alert type="error" showIcon title={segments.error} />}
      <Table
        rowKey="id"
        loading={segments.loading}
        dataSource={segments.data ?? []}
        pagination={false}
        columns={[
          { title: t('common.name'), dataIndex: 'name', render: (n: string, s) => <Link to={`/segments/${s.id}`}>{n}</Link> },
          { title: t('segments.kind'), dataIndex: 'kind', render: (k: string) => <Tag>{k === 'static' ? t('segments.static') : t('segments.dynamic')}</Tag> },
          { title: t('common.count'), dataIndex: 'count', align: 'right', render: (n: number) => formatNumber(locale, n) },
          { title: t('segments.definition'), dataIndex: 'definition', ellipsis: true, render: (d: string | null) => <code>{d ?? '—'}</code> },
          { title: t('common.created'), dataIndex: 'created_at', render: (v: string) => formatTime(locale, v) },
        ]}
      />
    </Space>
  );
}

type Clause = { field: string; op: string; value: string };

const FIELDS: { value: string; label: [string, string]; ops: string[] }[] = [
  { value: 'tag', label: ['标签', 'Tag'], ops: ['has', 'not'] },
  { value: 'trait', label: ['属性', 'Trait'], ops: ['=', '!=', 'contains', 'exists'] },
  { value: 'performed', label: ['近30天行为次数', 'Events, last 30 days'], ops: ['>=', '<', '='] },
  { value: 'orders.count', label: ['近90天订单数', 'Orders, last 90 days'], ops: ['>=', '<', '='] },
  { value: 'orders.sum', label: ['近365天消费', 'Spend, last 365 days'], ops: ['>=', '<'] },
  { value: 'rfm.class', label: ['RFM 分类', 'RFM class'], ops: ['='] },
  { value: 'lifecycle', label: ['生命周期', 'Lifecycle stage'], ops: ['=', '!='] },
  { value: 'channel_code', label: ['渠道活码', 'Channel code'], ops: ['has', 'not'] },
];

const quote = (s: string) => JSON.stringify(s);

/** The text form of the form's clauses, joined by `and`. */
export function clausesToText(clauses: Clause[]): string {
  return clauses
    .filter((c) => c.value.trim() || c.op === 'exists')
    .map((c) => {
      const v = c.value.trim();
      switch (c.field) {
        case 'tag':
          return c.op === 'not' ? `not tag(${quote(v)})` : `tag(${quote(v)})`;
        case 'trait': {
          const [key, ...rest] = v.split('=');
          const name = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key.trim()) ? key.trim() : quote(key.trim());
          if (c.op === 'exists') return `trait.${name} exists`;
          const value = rest.join('=').trim();
          const literal = value !== '' && !Number.isNaN(Number(value)) ? value : quote(value);
          return `trait.${name} ${c.op} ${literal}`;
        }
        case 'performed': {
          const [event, n] = v.split(/\s*,\s*/);
          return `performed(${quote(event)}, last 30d) ${c.op} ${Number(n) || 1}`;
        }
        case 'orders.count':
          return `orders.count(last 90d) ${c.op} ${Number(v) || 0}`;
        case 'orders.sum':
          return `orders.sum(last 365d) ${c.op} ${Number(v) || 0}`;
        case 'rfm.class':
          return `rfm.class = ${quote(v)}`;
        case 'lifecycle':
          return `lifecycle ${c.op} ${quote(v)}`;
        case 'channel_code':
          return c.op === 'not' ? `not channel_code(${quote(v)})` : `channel_code(${quote(v)})`;
        default:
          return '';
      }
    })
    .filter(Boolean)
    .join(' and ');
}

type Preview = Schemas['Preview'];

/** Counts a definition as it is typed (debounced), with the parse error's position. */
function useLiveCount(definition: string) {
  const [preview, setPreview] = useState<Preview | null>(null);
  const [error, setError] = useState<{ message: string; line?: number; column?: number } | null>(null);
  const [loading, setLoading] = useState(false);
  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    if (!definition.trim()) {
      setPreview(null);
      setError(null);
      setLoading(false);
      return;
    }
    const timer = window.setTimeout(async () => {
      setLoading(true);
      try {
        const p = await unwrap(api.POST('/api/v1/segments/preview', { body: { definition, sample: 5 } }));
        if (mine === seq.current) {
          setPreview(p);
          setError(null);
        }
      } catch (e) {
        if (mine !== seq.current) return;
        const details = e instanceof ApiError ? (e.details as { line?: number; column?: number } | null) : null;
        setError({ message: errorMessage(e), line: details?.line, column: details?.column });
        setPreview(null);
      } finally {
        if (mine === seq.current) setLoading(false);
      }
    }, 250);
    return () => window.clearTimeout(timer);
  }, [definition]);
  return { preview, error, loading };
}

export function SegmentPage() {
  const { id } = useParams();
  const isNew = id === 'new';
  const segmentId = Number(id);
  const { t, locale } = useLocale();
  const { can } = useSession();
  const { message } = App.useApp();
  const navigate = useNavigate();
  const segment = useApi(
    () => (isNew ? Promise.resolve(null) : unwrap(api.GET('/api/v1/segments/{id}', { params: { path: { id: segmentId } } }))),
    [id],
  );
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'dynamic' | 'static'>('dynamic');
  const [mode, setMode] = useState<'text' | 'form'>('text');
  const [text, setText] = useState('');
  const [clauses, setClauses] = useState<Clause[]>([{ field: 'tag', op: 'has', value: '' }]);
  const [saved, setSaved] = useState({ name: '', definition: '' });
  const [saveError, setSaveError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // set just before the page itself navigates away (after saving or deleting)
  const leaving = useRef(false);

  useEffect(() => {
    const s = segment.data;
    if (s) {
      setName(s.name);
      setKind(s.kind);
      setMode('text');
      setText(s.definition ?? '');
      setSaved({ name: s.name, definition: s.definition ?? '' });
      leaving.current = false;
    }
  }, [segment.data]);

  const definition = mode === 'text' ? text : clausesToText(clauses);
  const live = useLiveCount(kind === 'dynamic' || isNew ? definition : '');
  // a static segment's definition is not kept: only its name can be unsaved
  const dirty = can('segments.write') && (name !== saved.name || (kind === 'dynamic' && definition !== saved.definition));
  const blocker = useBlocker(
    ({ currentLocation, nextLocation }) => dirty && !leaving.current && currentLocation.pathname !== nextLocation.pathname,
  );
  useEffect(() => {
    if (blocker.state === 'blocked') {
      if (window.confirm(t('common.unsaved'))) blocker.proceed();
      else blocker.reset();
    }
  }, [blocker, t]);
  useEffect(() => {
    const warn = (e: BeforeUnloadEvent) => {
      if (dirty) e.preventDefault();
    };
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [dirty]);

  async function save() {
    setBusy(true);
    setSaveError(null);
    try {
      if (isNew) {
        const created = await unwrap(api.POST('/api/v1/segments', { body: { name, definition, kind } }));
        void message.success(t('common.saved'));
        leaving.current = true;
        navigate(`/segments/${created.id}`, { replace: true });
      } else {
        await unwrap(api.PATCH('/api/v1/segments/{id}', { params: { path: { id: segmentId } }, body: { name, definition: kind === 'dynamic' ? definition : undefined } }));
        setSaved({ name, definition });
        void message.success(t('common.saved'));
        void segment.reload();
      }
    } catch (e) {
      setSaveError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    try {
      await unwrap(api.DELETE('/api/v1/segments/{id}', { params: { path: { id: segmentId } } }));
      leaving.current = true;
      navigate('/segments');
    } catch (e) {
      setSaveError(errorMessage(e));
    }
  }

  if (segment.error) return <Alert type="error" showIcon title={segment.error} role="alert" />;
  const editable = can('segments.write') && (isNew || kind === 'dynamic');

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {isNew ? t('segments.new') : name}
      </Typography.Title>
      <Row gutter={[16, 16]}>
        <Col xs={24} xl={16}>
          <Card size="small">
            <Form layout="vertical">
              <Form.Item label={t('common.name')} required validateStatus={saveError && !name.trim() ? 'error' : undefined}>
                <Input aria-label={t('common.name')} value={name} onChange={(e) => setName(e.target.value)} disabled={!can('segments.write')} data-testid="segment-name" />
              </Form.Item>
              {isNew && (
                <Form.Item label={t('segments.kind')}>
                  <Radio.Group value={kind} onChange={(e) => setKind(e.target.value)}>
                    <Radio value="dynamic">{t('segments.dynamic')}</Radio>
                    <Radio value="static">{t('segments.static')}</Radio>
                  </Radio.Group>
                </Form.Item>
              )}
              <Form.Item
                label={
                  <Space>
                    {t('segments.definition')}
                    {editable && (
                      <Segmented
                        size="small"
                        value={mode}
                        onChange={(v) => {
                          if (v === 'text' && mode === 'form') setText(clausesToText(clauses));
                          setMode(v as 'text' | 'form');
                        }}
                        options={[
                          { label: t('segments.text'), value: 'text' },
                          { label: t('segments.form'), value: 'form' },
                        ]}
                      />
                    )}
                  </Space>
                }
                validateStatus={live.error ? 'error' : undefined}
                help={live.error ? <span data-testid="definition-error" data-line={live.error.line} data-column={live.error.column}>{live.error.message}</span> : undefined}
              >
                {mode === 'text' || !editable ? (
                  <Input.TextArea
                    aria-label={t('segments.definition')}
                    rows={4}
                    value={text}
                    disabled={!editable}
                    onChange={(e) => setText(e.target.value)}
                    placeholder='tag("高净值") and orders.count(last 90d) >= 2'
                    style={{ fontFamily: 'ui-monospace, monospace' }}
                    data-testid="segment-definition"
                  />
                ) : (
                  <ClauseForm clauses={clauses} onChange={setClauses} />
                )}
              </Form.Item>
              {mode === 'form' && editable && <Typography.Paragraph type="secondary"><code>{definition || '—'}</code></Typography.Paragraph>}
              {saveError && <Alert type="error" showIcon title={saveError} role="alert" style={{ marginBottom: 12 }} />}
              {can('segments.write') && (
                <Space>
                  <Button type="primary" onClick={save} loading={busy} disabled={!name.trim() || (!definition.trim() && kind === 'dynamic')} data-testid="save-segment">
                    {t('common.save')}
                  </Button>
                  {!isNew && (
                    <Popconfirm title={t('common.confirmDelete')} onConfirm={remove}>
                      <Button danger icon={<DeleteOutlined />}>
                        {t('common.delete')}
                      </Button>
                    </Popconfirm>
                  )}
                </Space>
              )}
            </Form>
          </Card>
        </Col>
        <Col xs={24} xl={8}>
          <Card size="small" title={t('segments.liveCount')}>
            <Statistic value={live.preview ? formatNumber(locale, live.preview.count) : segment.data ? formatNumber(locale, segment.data.count) : '—'} loading={live.loading && !live.preview} />
            <span data-testid="live-count" data-count={live.preview?.count ?? segment.data?.count ?? ''} hidden />
            {live.preview && <Typography.Text type="secondary">{live.preview.took_ms.toFixed(1)} ms</Typography.Text>}
            {live.preview && live.preview.sample.length > 0 && (
              <div style={{ marginTop: 12 }}>
                <Typography.Text strong>{t('segments.sample')}</Typography.Text>
                <ul style={{ paddingLeft: 18, margin: '4px 0 0' }}>
                  {live.preview.sample.map((c) => (
                    <li key={c.id}>
                      <Link to={`/customers/${c.id}`}>{c.name || `#${c.id}`}</Link>
                    </li>
                  ))}
                </ul>
              </div>
            )}
          </Card>
        </Col>
      </Row>
      {!isNew && segment.data && <SegmentMembers id={segmentId} />}
    </Space>
  );
}

function ClauseForm({ clauses, onChange }: { clauses: Clause[]; onChange: (c: Clause[]) => void }) {
  const { t, locale } = useLocale();
  const set = (n: number, patch: Partial<Clause>) => onChange(clauses.map((c, i) => (i === n ? { ...c, ...patch } : c)));
  const hint: Record<string, string> = {
    tag: '高净值',
    trait: 'city=上海',
    performed: 'Product Viewed, 3',
    'orders.count': '2',
    'orders.sum': '1000',
    'rfm.class': '重要价值',
    lifecycle: 'retained',
  };
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      {clauses.map((c, n) => {
        const field = FIELDS.find((f) => f.value === c.field)!;
        return (
          <Space.Compact key={n} style={{ width: '100%' }}>
            <Select
              aria-label="field"
              style={{ width: 200 }}
              value={c.field}
              onChange={(v) => set(n, { field: v, op: FIELDS.find((f) => f.value === v)!.ops[0] })}
              options={FIELDS.map((f) => ({ value: f.value, label: f.label[locale === 'zh' ? 0 : 1] }))}
            />
            <Select aria-label="operator" style={{ width: 110 }} value={c.op} onChange={(v) => set(n, { op: v })} options={field.ops.map((o) => ({ value: o, label: o }))} />
            <Input aria-label="value" value={c.value} placeholder={hint[c.field]} onChange={(e) => set(n, { value: e.target.value })} />
            <Button aria-label={t('common.delete')} icon={<DeleteOutlined />} disabled={clauses.length === 1} onClick={() => onChange(clauses.filter((_, i) => i !== n))} />
          </Space.Compact>
        );
      })}
      <Button icon={<PlusOutlined />} onClick={() => onChange([...clauses, { field: 'tag', op: 'has', value: '' }])}>
        {t('segments.addClause')}
      </Button>
    </Space>
  );
}

function SegmentMembers({ id }: { id: number }) {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const members = useApi(() => unwrap(api.GET('/api/v1/segments/{id}/members', { params: { path: { id }, query: { limit: 20 } } })), [id]);
  const counts = useApi(() => unwrap(api.GET('/api/v1/segments/{id}/counts', { params: { path: { id } } })), [id]);
  const rows = counts.data ?? [];
  const option = useMemo<ChartOption>(
    () => ({
      tooltip: { trigger: 'axis' },
      grid: { left: 48, right: 16, top: 16, bottom: 24 },
      xAxis: { type: 'time' },
      yAxis: { type: 'value' },
      series: [{ type: 'line', data: rows.map((r) => [r.at, r.count]), smooth: true }],
    }),
    [rows],
  );
  return (
    <Row gutter={[16, 16]}>
      <Col xs={24} xl={14}>
        <Card
          size="small"
          title={t('segments.members')}
          extra={
            can('customers.export') && (
              <a href={`/api/v1/segments/${id}/export`} download>
                <Button size="small" icon={<DownloadOutlined />}>
                  {t('segments.export')}
                </Button>
              </a>
            )
          }
        >
          <Table
            size="small"
            rowKey="id"
            loading={members.loading}
            dataSource={members.data?.items ?? []}
            pagination={false}
            columns={[
              { title: t('customers.name'), dataIndex: 'name', render: (n: string | null, c) => <Link to={`/customers/${c.id}`}>{n || `#${c.id}`}</Link> },
              { title: t('customers.phone'), dataIndex: 'phone', render: (p: string | null) => p ?? '—' },
              { title: t('customers.lastSeen'), dataIndex: 'last_seen_at', render: (v: string) => formatTime(locale, v) },
            ]}
          />
        </Card>
      </Col>
      {/* sizes over time are the tenant's: a narrower data scope is refused them */}
      {!counts.error && (
      <Col xs={24} xl={10}>
        <ChartCard
          title={t('common.count')}
          option={option}
          rows={rows}
          rowKey={(r) => r.at}
          empty={rows.length === 0}
          height={240}
          columns={[
            { title: t('audit.time'), dataIndex: 'at', render: (v: string) => formatTime(locale, v) },
            { title: t('common.count'), dataIndex: 'count', align: 'right' },
          ]}
        />
      </Col>
      )}
    </Row>
  );
}

