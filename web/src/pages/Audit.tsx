// The audit log: who did what to what, newest first, filterable by action and target.
import { Alert, Button, Form, Input, Space, Table, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { formatTime } from '../format';
import { useLocale } from '../i18n';

type Entry = Schemas['Page_AuditEntry']['items'][number];

export function AuditPage() {
  const { t, locale } = useLocale();
  const [filters, setFilters] = useState<{ action?: string; target_kind?: string }>({});
  const [rows, setRows] = useState<Entry[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  async function load(after: string | null) {
    setLoading(true);
    setError(null);
    try {
      const page = await unwrap(
        api.GET('/api/v1/audit-log', {
          params: { query: { action: filters.action || undefined, target_kind: filters.target_kind || undefined, cursor: after ?? undefined, limit: 50 } },
        }),
      );
      setRows((old) => (after ? [...old, ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setLoading(false);
    }
  }
  useEffect(() => {
    void load(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [filters]);

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t('nav.audit')}
      </Typography.Title>
      <Form layout="inline" onFinish={setFilters}>
        <Form.Item name="action" label={t('audit.action')}>
          <Input allowClear placeholder="customer.reveal" />
        </Form.Item>
        <Form.Item name="target_kind" label={t('audit.target')}>
          <Input allowClear placeholder="customer" />
        </Form.Item>
        <Button htmlType="submit">{t('common.search')}</Button>
      </Form>
      {error && <Alert type="error" showIcon title={error} role="alert" />}
      <Table
        rowKey="id"
        loading={loading}
        dataSource={rows}
        pagination={false}
        scroll={{ x: 900 }}
        columns={[
          { title: t('audit.time'), dataIndex: 'at', render: (v: string) => formatTime(locale, v), width: 170 },
          { title: t('audit.actor'), dataIndex: ['actor', 'label'] },
          { title: t('audit.action'), dataIndex: 'action', render: (a: string) => <code>{a}</code> },
          { title: t('audit.target'), key: 'target', render: (_: unknown, e) => `${e.target_kind}${e.target_id ? ' #' + e.target_id : ''}` },
          { title: 'IP', dataIndex: ['actor', 'ip'] },
          { title: 'details', dataIndex: 'details', ellipsis: true, render: (d: unknown) => <code>{d == null ? '' : JSON.stringify(d)}</code> },
        ]}
      />
      {cursor && (
        <Button block onClick={() => load(cursor)} loading={loading}>
          {t('common.loadMore')}
        </Button>
      )}
    </Space>
  );
}
