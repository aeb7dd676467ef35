// Tracked links (短链) on the Acquisition page: each link's short address, where it
// leads (its destination with UTM), and its clicks over the page's date range (personal
// ones among them, crawler fetches apart); those who may run campaigns make links (to a
// destination an admin registered), change and delete them. Group codes are in
// `AcquisitionGroupCodes.tsx`.
import { PlusOutlined } from '@ant-design/icons';
import { Alert, Button, Card, Form, Input, Select, Table, Typography } from 'antd';
import type { Dayjs } from 'dayjs';
import { useMemo, useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { FormModal } from '../components/FormModal';
import { formatNumber } from '../format';
import { actionsColumn } from '../components/RowActions';
import { useLocale } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';
import type { Lookups } from './acquisitionLookups';

type TrackedLink = Schemas['TrackedLink'];
const UTM = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content'] as const;
type Values = { name: string; destination: string; account_id?: number | null } & Partial<Record<(typeof UTM)[number], string>>;
const FIELDS = ['name', 'destination', 'account_id', ...UTM];

export function LinksCard({ range, lookups }: { range: [Dayjs, Dayjs]; lookups: Lookups }) {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const editable = can('campaigns.write');
  const links = useApi(() => unwrap(api.GET('/api/v1/links', { params: { query: { limit: 200 } } })), []);
  const report = useApi(
    () =>
      unwrap(
        api.GET('/api/v1/links/report', {
          params: { query: { from: range[0].format('YYYY-MM-DD'), to: range[1].format('YYYY-MM-DD') } },
        }),
      ),
    [range[0].valueOf(), range[1].valueOf()],
  );
  const destinations = useApi(() => unwrap(api.GET('/api/v1/link-destinations')), []);
  // the link in the dialog: `new` for a new one
  const [editing, setEditing] = useState<TrackedLink | 'new' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [form] = Form.useForm<Values>();
  const current = editing === 'new' ? null : editing;
  const figures = useMemo(() => new Map((report.data?.rows ?? []).map((r) => [r.link_id, r])), [report.data]);
  const n = (v: number) => formatNumber(locale, v);

  async function submit(v: Values) {
    if (!current) {
      const body: Schemas['NewTrackedLink'] = { name: v.name, destination: v.destination, account_id: v.account_id ?? null };
      for (const key of UTM) if (v[key]?.trim()) body[key] = v[key].trim();
      await unwrap(api.POST('/api/v1/links', { body }));
    } else {
      // only what changed: a UTM value emptied is sent as "" (removes it)
      const body: Schemas['TrackedLinkChange'] = {};
      if (v.name !== current.name) body.name = v.name;
      if (v.destination !== current.destination) body.destination = v.destination;
      if ((v.account_id ?? null) !== (current.account_id ?? null)) body.account_id = v.account_id ?? null;
      for (const key of UTM) {
        const value = v[key]?.trim() ?? '';
        if (value !== (current[key] ?? '')) body[key] = value;
      }
      if (Object.keys(body).length > 0) await unwrap(api.PATCH('/api/v1/links/{id}', { params: { path: { id: current.id } }, body }));
    }
    await links.reload();
  }

  async function remove(l: TrackedLink) {
    setError(null);
    try {
      await unwrap(api.DELETE('/api/v1/links/{id}', { params: { path: { id: l.id } } }));
      await links.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  const values: Partial<Values> = current
    ? { name: current.name, destination: current.destination, account_id: current.account_id ?? null, ...Object.fromEntries(UTM.map((k) => [k, current[k] ?? ''])) }
    : { account_id: null };

  return (
    <Card
      title={t('links.title')}
      extra={
        editable && (
          <Button icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="new-link">
            {t('links.new')}
          </Button>
        )
      }
    >
      {(error || links.error || report.error) && <Alert type="error" showIcon title={error ?? links.error ?? report.error} role="alert" style={{ marginBottom: 12 }} />}
      {destinations.data && destinations.data.length === 0 && (
        <Alert type="info" showIcon title={t('links.noDestination')} style={{ marginBottom: 12 }} />
      )}
      <Table<TrackedLink>
        data-testid="acquisition-links"
        size="small"
        loading={links.loading}
        rowKey="id"
        dataSource={links.data?.items ?? []}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          {
            title: t('links.short'),
            dataIndex: 'path',
            render: (path: string) => (
              <Typography.Text code copyable={{ text: window.location.origin + path }}>
                {path}
              </Typography.Text>
            ),
          },
          { title: t('links.target'), dataIndex: 'target', ellipsis: true },
          { title: t('links.clicks'), key: 'clicks', align: 'right', render: (_, l) => n(figures.get(l.id)?.clicks ?? 0) },
          { title: t('links.personal'), key: 'personal', align: 'right', render: (_, l) => n(figures.get(l.id)?.personal_clicks ?? 0) },
          { title: t('links.crawlers'), key: 'crawlers', align: 'right', render: (_, l) => n(figures.get(l.id)?.crawler_fetches ?? 0) },
          ...actionsColumn<TrackedLink>(editable, t('common.actions'), {
            kind: 'link',
            confirm: (l) => t('links.confirmDelete', { name: l.name }),
            onEdit: (l) => setEditing(l),
            onDelete: (l) => remove(l),
          }),
        ]}
      />
      <FormModal<Values>
        open={editing !== null}
        title={current ? t('links.edit') : t('links.new')}
        form={form}
        values={values}
        onClose={() => setEditing(null)}
        submit={submit}
        fieldOf={(f) => (FIELDS.includes(f) ? [f] : null)}
        name="link-form"
      >
        <Form.Item name="name" label={t('common.name')} rules={[{ required: true, whitespace: true }]}>
          <Input maxLength={100} />
        </Form.Item>
        <Form.Item
          name="destination"
          label={t('links.destination')}
          rules={[{ required: true }]}
          extra={(destinations.data ?? []).map((d) => d.url_prefix).join(' · ')}
        >
          <Input placeholder="https://" />
        </Form.Item>
        <Form.Item name="account_id" label={t('acquisition.account')}>
          <Select allowClear showSearch optionFilterProp="label" options={(lookups.accounts.data ?? []).map((a) => ({ value: a.id, label: a.name }))} />
        </Form.Item>
        {UTM.map((key) => (
          <Form.Item key={key} name={key} label={key} extra={current && key === 'utm_source' ? t('links.utmHelp') : undefined}>
            <Input />
          </Form.Item>
        ))}
      </FormModal>
    </Card>
  );
}
