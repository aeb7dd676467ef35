// CSV imports of customers and orders: upload, then a progress bar that follows the job
// (queued, then running) until it is completed or failed, and the rejected rows with
// their line numbers and reasons.
import { UploadOutlined } from '@ant-design/icons';
import { Alert, Button, Card, Form, Input, Progress, Select, Space, Table, Tag, Typography, Upload } from 'antd';
import { useEffect, useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { formatNumber, formatTime } from '../format';
import { useLocale } from '../i18n';
import { useApi } from '../useApi';

type Job = Schemas['ImportJob'];

export function ImportsPage() {
  const { t, locale } = useLocale();
  const jobs = useApi(() => unwrap(api.GET('/api/v1/imports', { params: { query: { limit: 50 } } })), []);
  const [kind, setKind] = useState<'customers' | 'orders'>('customers');
  const [map, setMap] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const running = (jobs.data?.items ?? []).some((j) => j.status === 'queued' || j.status === 'running');

  useEffect(() => {
    if (!running) return;
    const timer = window.setInterval(() => void jobs.reload(), 1000);
    return () => window.clearInterval(timer);
  }, [running, jobs]);

  async function start() {
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      await unwrap(
        api.POST('/api/v1/imports', {
          params: { query: { kind, file_name: file.name, map: map || undefined } },
          body: (await file.text()) as never,
          bodySerializer: (b: unknown) => b as string,
          headers: { 'content-type': 'text/csv' },
        }),
      );
      setFile(null);
      void jobs.reload();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t('nav.imports')}
      </Typography.Title>
      <Card size="small">
        <Form layout="inline" style={{ rowGap: 8 }}>
          <Form.Item label={t('sources.kind')}>
            <Select aria-label={t('sources.kind')} value={kind} onChange={setKind} style={{ width: 140 }} options={[{ value: 'customers', label: t('nav.customers') }, { value: 'orders', label: t('customers.orders') }]} />
          </Form.Item>
          <Form.Item label="map">
            <Input aria-label="map" value={map} onChange={(e) => setMap(e.target.value)} placeholder="手机=phone,卡号=identity:member_no" style={{ width: 280 }} />
          </Form.Item>
          <Form.Item>
            <Upload accept=".csv,text/csv" maxCount={1} beforeUpload={(f) => (setFile(f), false)} onRemove={() => setFile(null)} fileList={file ? [{ uid: '1', name: file.name }] : []}>
              <Button icon={<UploadOutlined />}>CSV</Button>
            </Upload>
          </Form.Item>
          <Button type="primary" disabled={!file} loading={busy} onClick={start}>
            {t('nav.imports')}
          </Button>
        </Form>
        {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginTop: 12 }} />}
      </Card>
      <Table<Job>
        rowKey="id"
        dataSource={jobs.data?.items ?? []}
        loading={jobs.loading && !jobs.data}
        pagination={false}
        expandable={{
          rowExpandable: (j) => j.rejects.length > 0,
          expandedRowRender: (j) => (
            <Table size="small" rowKey={(r) => JSON.stringify(r)} pagination={false} dataSource={j.rejects as Record<string, unknown>[]} columns={[{ title: 'line', dataIndex: 'line' }, { title: 'reason', dataIndex: 'reason' }]} />
          ),
        }}
        columns={[
          { title: 'file', dataIndex: 'file_name' },
          { title: t('sources.kind'), dataIndex: 'kind' },
          { title: t('staff.status'), dataIndex: 'status', render: (s: string, j) => (j.error ? <Tag color="red" title={j.error}>{s}</Tag> : <Tag>{s}</Tag>) },
          {
            title: '%',
            key: 'progress',
            width: 220,
            render: (_: unknown, j) => <Progress percent={j.total_rows ? Math.floor((j.processed_rows / j.total_rows) * 100) : j.status === 'completed' ? 100 : 0} size="small" />,
          },
          { title: 'stored', dataIndex: 'stored_rows', align: 'right', render: (n: number) => formatNumber(locale, n) },
          { title: t('sources.rejected'), dataIndex: 'rejected_rows', align: 'right', render: (n: number) => formatNumber(locale, n) },
          { title: t('common.created'), dataIndex: 'created_at', render: (v: string) => formatTime(locale, v) },
        ]}
      />
    </Space>
  );
}
