// Sources of events and their write keys, with the snippet a developer pastes into the
// JS or Python SDK. A write key is shown once, when created or rotated.
import { PlusOutlined } from '@ant-design/icons';
import { Alert, Button, Form, Input, Modal, Popconfirm, Select, Space, Table, Tabs, Typography } from 'antd';
import { useState } from 'react';
import { api, errorMessage, unwrap } from '../api/client';
import { formatNumber, formatTime } from '../format';
import { useLocale } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';
import { channelName } from './Dashboard';

const KINDS = ['mini_program', 'official_account', 'wecom', 'app', 'website', 'server', 'other'];

export function snippets(writeKey: string, origin: string) {
  return {
    js: `// npm install @segment/analytics-next
import { AnalyticsBrowser } from '@segment/analytics-next';

export const analytics = AnalyticsBrowser.load(
  { writeKey: '${writeKey}', cdnSettings: { integrations: { 'Segment.io': { apiHost: '${origin.replace(/^https?:\/\//, '')}/v1', protocol: '${origin.startsWith('https') ? 'https' : 'http'}' } } } },
  { integrations: { 'Segment.io': { apiHost: '${origin.replace(/^https?:\/\//, '')}/v1' } } },
);
analytics.identify('user-42', { name: '李雷', phone: '13812341680' });
analytics.track('Product Viewed', { sku: 'SKU-1', price: 199 });`,
    python: `# pip install segment-analytics-python
import segment.analytics as analytics

analytics.write_key = "${writeKey}"
analytics.host = "${origin}"
analytics.identify("user-42", {"name": "李雷", "phone": "13812341680"})
analytics.track("user-42", "Product Viewed", {"sku": "SKU-1", "price": 199})
analytics.flush()`,
    curl: `curl -u '${writeKey}:' -H 'content-type: application/json' \\
  -d '{"userId":"user-42","event":"Product Viewed","properties":{"price":199}}' \\
  ${origin}/v1/track`,
  };
}

export function SourcesPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const sources = useApi(() => unwrap(api.GET('/api/v1/sources', { params: { query: { limit: 200 } } })), []);
  const [shown, setShown] = useState<{ name: string; key: string } | null>(null);
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [form] = Form.useForm<{ name: string; kind: string }>();

  async function create(values: { name: string; kind: string }) {
    setError(null);
    try {
      const created = await unwrap(api.POST('/api/v1/sources', { body: { name: values.name, kind: values.kind as 'app' } }));
      setCreating(false);
      form.resetFields();
      setShown({ name: created.source.name, key: created.write_key });
      void sources.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  async function rotate(id: number, name: string) {
    setError(null);
    try {
      const rotated = await unwrap(api.POST('/api/v1/sources/{id}/rotate-key', { params: { path: { id } } }));
      setShown({ name, key: rotated.write_key });
      void sources.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  const code = shown ? snippets(shown.key, window.location.origin) : null;
  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('nav.sources')}
        </Typography.Title>
        {can('sources.write') && (
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)}>
            {t('common.create')}
          </Button>
        )}
      </Space>
      {(error || sources.error) && !creating && <Alert type="error" showIcon title={error ?? sources.error} role="alert" />}
      <Table
        rowKey="id"
        loading={sources.loading}
        dataSource={sources.data?.items ?? []}
        pagination={false}
        scroll={{ x: 800 }}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('sources.kind'), dataIndex: 'kind', render: (k: string) => channelName(locale, k) },
          { title: t('sources.writeKey'), dataIndex: 'write_key_prefix', render: (p: string) => <code>{p}…</code> },
          { title: t('sources.received'), dataIndex: 'received', align: 'right', render: (n: number) => formatNumber(locale, n) },
          { title: t('sources.rejected'), dataIndex: 'rejected', align: 'right', render: (n: number) => formatNumber(locale, n) },
          { title: t('sources.lastEvent'), dataIndex: 'last_event_at', render: (v: string | null) => formatTime(locale, v) },
          {
            title: t('common.actions'),
            key: 'a',
            render: (_: unknown, s) =>
              can('sources.write') && (
                <Popconfirm title={t('sources.rotate') + '?'} onConfirm={() => rotate(s.id, s.name)}>
                  <Button size="small">{t('sources.rotate')}</Button>
                </Popconfirm>
              ),
          },
        ]}
      />
      <Modal open={creating} title={t('nav.sources')} onCancel={() => setCreating(false)} onOk={() => form.submit()} okText={t('common.save')} cancelText={t('common.cancel')}>
        {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 12 }} />}
        <Form form={form} layout="vertical" onFinish={create} initialValues={{ kind: 'mini_program' }}>
          <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
          <Form.Item name="kind" label={t('sources.kind')}>
            <Select options={KINDS.map((k) => ({ value: k, label: channelName(locale, k) }))} />
          </Form.Item>
        </Form>
      </Modal>
      <Modal open={!!shown} title={`${shown?.name} · ${t('sources.snippet')}`} footer={null} onCancel={() => setShown(null)} width={760}>
        {shown && code && (
          <>
            <Alert type="warning" showIcon title={<span>{t('sources.writeKey')}: <Typography.Text code copyable data-testid="write-key">{shown.key}</Typography.Text></span>} style={{ marginBottom: 12 }} />
            <Tabs
              items={[
                { key: 'js', label: 'JavaScript', children: <Typography.Paragraph copyable={{ text: code.js }}><pre>{code.js}</pre></Typography.Paragraph> },
                { key: 'py', label: 'Python', children: <Typography.Paragraph copyable={{ text: code.python }}><pre>{code.python}</pre></Typography.Paragraph> },
                { key: 'curl', label: 'curl', children: <Typography.Paragraph copyable={{ text: code.curl }}><pre>{code.curl}</pre></Typography.Paragraph> },
              ]}
            />
          </>
        )}
      </Modal>
    </Space>
  );
}
