// Tracked links (短链) on the Acquisition page: each link's short address, where it
// leads (its destination with UTM), and its clicks over the page's date range (personal
// ones among them, crawler fetches apart); a form to make one (to a destination an
// admin registered) for those who may run campaigns.
import { PlusOutlined } from '@ant-design/icons';
import { Alert, Button, Card, Form, Input, Modal, Table, Typography } from 'antd';
import type { Dayjs } from 'dayjs';
import { useMemo, useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { formatNumber } from '../format';
import { useLocale } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';

type TrackedLink = Schemas['TrackedLink'];
type NewLink = { name: string; destination: string; utm_source?: string; utm_medium?: string; utm_campaign?: string };

export function LinksCard({ range }: { range: [Dayjs, Dayjs] }) {
  const { t, locale } = useLocale();
  const { can } = useSession();
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
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [form] = Form.useForm<NewLink>();
  const figures = useMemo(() => new Map((report.data?.rows ?? []).map((r) => [r.link_id, r])), [report.data]);
  const n = (v: number) => formatNumber(locale, v);

  async function create(values: NewLink) {
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/links', { body: values }));
      setCreating(false);
      form.resetFields();
      void links.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  return (
    <Card
      title={t('links.title')}
      extra={
        can('campaigns.write') && (
          <Button icon={<PlusOutlined />} onClick={() => setCreating(true)}>
            {t('common.create')}
          </Button>
        )
      }
    >
      {(links.error || report.error) && <Alert type="error" showIcon title={links.error ?? report.error} role="alert" />}
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
        ]}
      />
      <Modal
        open={creating}
        title={t('links.title')}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        okText={t('common.save')}
        cancelText={t('common.cancel')}
      >
        {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 12 }} />}
        <Form form={form} layout="vertical" onFinish={create}>
          <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
          <Form.Item
            name="destination"
            label={t('links.destination')}
            rules={[{ required: true }]}
            extra={(destinations.data ?? []).map((d) => d.url_prefix).join(' · ')}
          >
            <Input placeholder="https://" />
          </Form.Item>
          <Form.Item name="utm_source" label="utm_source">
            <Input />
          </Form.Item>
          <Form.Item name="utm_medium" label="utm_medium">
            <Input />
          </Form.Item>
          <Form.Item name="utm_campaign" label="utm_campaign">
            <Input />
          </Form.Item>
        </Form>
      </Modal>
    </Card>
  );
}

type GroupCode = Schemas['GroupCode'];

/** Group codes (群活码): each code's chats, the ones its join way seats people in now,
 * and the joins over the page's date range. */
export function GroupCodesCard({ range }: { range: [Dayjs, Dayjs] }) {
  const { t, locale } = useLocale();
  const codes = useApi(() => unwrap(api.GET('/api/v1/group-codes', { params: { query: { limit: 200 } } })), []);
  const report = useApi(
    () =>
      unwrap(
        api.GET('/api/v1/group-codes/report', {
          params: { query: { from: range[0].format('YYYY-MM-DD'), to: range[1].format('YYYY-MM-DD') } },
        }),
      ),
    [range[0].valueOf(), range[1].valueOf()],
  );
  const figures = useMemo(() => new Map((report.data?.rows ?? []).map((r) => [r.code_id, r])), [report.data]);
  const n = (v: number) => formatNumber(locale, v);
  return (
    <Card title={t('groupCodes.title')}>
      {(codes.error || report.error) && <Alert type="error" showIcon title={codes.error ?? report.error} role="alert" />}
      <Table<GroupCode>
        data-testid="acquisition-group-codes"
        size="small"
        loading={codes.loading}
        rowKey="id"
        dataSource={codes.data?.items ?? []}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: 'state', dataIndex: 'state', render: (s: string) => <Typography.Text code>{s}</Typography.Text> },
          {
            title: t('groupCodes.seating'),
            key: 'way',
            render: (_, c) =>
              c.join_way?.error ? (
                <Typography.Text type="danger">{c.join_way.error}</Typography.Text>
              ) : (
                (c.join_way?.chat_ids ?? []).join(', ') || '—'
              ),
          },
          { title: t('groupCodes.chats'), key: 'pool', align: 'right', render: (_, c) => n(c.chat_ids.length) },
          { title: t('groupCodes.joins'), key: 'joins', align: 'right', render: (_, c) => n(figures.get(c.id)?.joins ?? 0) },
          { title: t('groupCodes.left'), key: 'left', align: 'right', render: (_, c) => n(figures.get(c.id)?.left ?? 0) },
        ]}
      />
    </Card>
  );
}
