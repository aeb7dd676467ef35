// The customer list: search (name, phone, email, any identity) and filter by a segment
// definition, saved views (kept on the server, per staff member), and bulk tagging of the
// selected customers.
import { DeleteOutlined } from '@ant-design/icons';
import { Alert, App, Button, Card, Dropdown, Form, Input, Modal, Progress, Select, Space, Table, Tag, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { FollowJob } from '../components/JobProgress';
import { formatMoney, formatTime } from '../format';
import { useLocale } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';

type Customer = Schemas['Customer'];
type View = Schemas['SavedView'];

export function CustomersPage() {
  const { t, locale } = useLocale();
  const { can, me } = useSession();
  const { message } = App.useApp();
  const [params, setParams] = useSearchParams();
  const q = params.get('q') ?? '';
  const filter = params.get('filter') ?? '';
  const [rows, setRows] = useState<Customer[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<number[]>([]);
  const isStaff = me?.kind === 'staff';
  const views = useApi<View[]>(
    () => (isStaff ? unwrap(api.GET('/api/v1/me/views', { params: { query: { list: 'customers' } } })) : Promise.resolve([])),
    [isStaff],
  );
  const [tagging, setTagging] = useState(false);
  const [assigning, setAssigning] = useState(false);

  async function load(after: string | null) {
    setLoading(true);
    setError(null);
    try {
      const page = await unwrap(
        api.GET('/api/v1/customers', {
          params: { query: { q: q || undefined, filter: filter || undefined, cursor: after ?? undefined, limit: 50 } },
        }),
      );
      setRows((old) => (after ? [...old, ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
    } catch (e) {
      setError(errorMessage(e));
      if (!after) setRows([]);
    } finally {
      setLoading(false);
    }
  }

  useEffect(() => {
    setSelected([]);
    void load(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [q, filter]);

  function search(values: { q?: string | null; filter?: string | null }) {
    const next = new URLSearchParams();
    if (values.q?.trim()) next.set('q', values.q.trim());
    if (values.filter?.trim()) next.set('filter', values.filter.trim());
    setParams(next);
  }

  async function saveView() {
    const name = window.prompt(t('customers.saveView'));
    if (!name) return;
    try {
      await unwrap(api.PUT('/api/v1/me/views', { body: { list: 'customers', name, q: q || null, filter: filter || null } }));
      views.reload();
      void message.success(t('common.saved'));
    } catch (e) {
      void message.error(errorMessage(e));
    }
  }

  async function deleteView(view: View) {
    try {
      await unwrap(api.DELETE('/api/v1/me/views/{id}', { params: { path: { id: view.id } } }));
      views.reload();
    } catch (e) {
      void message.error(errorMessage(e));
    }
  }

  // a large export: a job writes the file; the link appears once it is done
  const [exportJob, setExportJob] = useState<{ id: number; done: boolean } | null>(null);
  async function exportInBackground() {
    try {
      const queued = await unwrap(api.POST('/api/v1/customers/exports', { body: { filter: filter || null } }));
      setExportJob({ id: queued.job_id, done: false });
    } catch (e) {
      void message.error(errorMessage(e));
    }
  }

  const exportQuery = new URLSearchParams();
  if (q) exportQuery.set('q', q);
  if (filter) exportQuery.set('filter', filter);

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t('nav.customers')}
      </Typography.Title>
      {exportJob && (
        <Card size="small" title={t('customers.exportBackground')} data-testid="export-job">
          <FollowJob key={exportJob.id} id={exportJob.id} onFinished={(job) => setExportJob({ id: exportJob.id, done: job.state === 'done' })} />
          {exportJob.done && (
            <a href={`/api/v1/customers/exports/${exportJob.id}/file`} download data-testid="export-download">
              {t('customers.exportDownload')}
            </a>
          )}
        </Card>
      )}
      <Card size="small">
        <Form layout="inline" onFinish={search} key={q + '|' + filter} initialValues={{ q, filter }} style={{ rowGap: 8 }}>
          <Form.Item name="q" label={t('common.search')}>
            <Input allowClear placeholder={t('customers.searchPlaceholder')} style={{ width: 260 }} data-testid="customer-search" />
          </Form.Item>
          <Form.Item name="filter" label={t('segments.definition')}>
            <Input allowClear placeholder='tag("高净值") and orders.count(last 90d) >= 2' style={{ width: 360 }} data-testid="customer-filter" />
          </Form.Item>
          <Button type="primary" htmlType="submit">
            {t('common.search')}
          </Button>
          {can('customers.export') && (
            <a href={`/api/v1/customers/export${exportQuery.size ? `?${exportQuery}` : ''}`} download style={{ marginLeft: 8 }}>
              <Button>{t('segments.export')}</Button>
            </a>
          )}
          {can('customers.export') && !q && (
            <Button onClick={exportInBackground} data-testid="export-background" style={{ marginLeft: 8 }}>
              {t('customers.exportBackground')}
            </Button>
          )}
          {isStaff && (
            <Dropdown
              menu={{
                items: [
                  ...(views.data ?? []).map((v) => ({
                    key: String(v.id),
                    label: (
                      <Space style={{ width: '100%', justifyContent: 'space-between' }}>
                        <span data-testid="saved-view">{v.name}</span>
                        <Button
                          type="text"
                          size="small"
                          aria-label={t('common.delete')}
                          icon={<DeleteOutlined />}
                          onClick={(e) => {
                            e.stopPropagation();
                            void deleteView(v);
                          }}
                        />
                      </Space>
                    ),
                    onClick: () => search(v),
                  })),
                  ...(views.data?.length ? [{ type: 'divider' as const }] : []),
                  { key: '__save', label: t('customers.saveView'), disabled: !q && !filter, onClick: () => void saveView() },
                ],
              }}
            >
              <Button style={{ marginLeft: 8 }} data-testid="saved-views">
                {t('customers.savedViews')}
              </Button>
            </Dropdown>
          )}
        </Form>
      </Card>
      {error && <Alert type="error" showIcon title={error} role="alert" />}
      {filter && !q && !selected.length && can('tags.write') && (
        <Alert
          type="info"
          title={t('customers.filterActive')}
          action={
            <Button size="small" onClick={() => setTagging(true)} data-testid="bulk-tag-filter">
              {t('customers.tagAllMatching')}
            </Button>
          }
        />
      )}
      {selected.length > 0 && can('tags.write') && (
        <Alert
          type="info"
          title={t('customers.selected', { n: selected.length })}
          action={
            <Space>
              {can('customers.write') && can('staff.read') && (
                <Button size="small" onClick={() => setAssigning(true)} data-testid="bulk-assign">
                  {t('customers.assign')}
                </Button>
              )}
              <Button size="small" type="primary" onClick={() => setTagging(true)} data-testid="bulk-tag">
                {t('customers.bulkTag')}
              </Button>
            </Space>
          }
        />
      )}
      <Table<Customer>
        rowKey="id"
        loading={loading}
        dataSource={rows}
        pagination={false}
        scroll={{ x: 900 }}
        rowSelection={can('tags.write') ? { selectedRowKeys: selected, onChange: (keys) => setSelected(keys as number[]) } : undefined}
        columns={[
          {
            title: t('customers.name'),
            dataIndex: 'name',
            render: (name: string | null, c) => <Link to={`/customers/${c.id}`}>{name || `#${c.id}`}</Link>,
          },
          { title: t('customers.phone'), dataIndex: 'phone', render: (p: string | null) => p ?? '—' },
          { title: t('customers.email'), dataIndex: 'email', render: (e: string | null) => e ?? '—' },
          {
            title: t('customers.identities'),
            dataIndex: 'identities',
            render: (ids: Customer['identities']) => (
              <Space size={4} wrap>
                {ids.slice(0, 3).map((i) => (
                  <Tag key={i.kind + i.value}>{i.kind}</Tag>
                ))}
              </Space>
            ),
          },
          { title: t('customers.orderCount'), dataIndex: ['orders', 'count'], align: 'right' },
          { title: t('customers.total'), dataIndex: ['orders', 'total'], align: 'right', render: (v: number) => formatMoney(locale, v) },
          { title: t('customers.lastSeen'), dataIndex: 'last_seen_at', render: (v: string) => formatTime(locale, v) },
        ]}
      />
      {cursor && (
        <Button onClick={() => load(cursor)} loading={loading} block>
          {t('common.loadMore')}
        </Button>
      )}
      <AssignModal
        open={assigning}
        customerIds={selected}
        onClose={(done) => {
          setAssigning(false);
          if (done) {
            setSelected([]);
            void load(null);
          }
        }}
      />
      <BulkTagModal
        open={tagging}
        customerIds={selected}
        definition={selected.length ? undefined : filter || undefined}
        onClose={(done) => {
          setTagging(false);
          if (done) {
            setSelected([]);
            void load(null);
          }
        }}
      />
    </Space>
  );
}

/** Tags the selected customers, or (with `definition`) everyone the filter matches; a
 *  large set takes a while on the server, shown as a running progress bar. */
function BulkTagModal({ open, customerIds, definition, onClose }: { open: boolean; customerIds: number[]; definition?: string; onClose: (done: boolean) => void }) {
  const { t } = useLocale();
  const { message } = App.useApp();
  const tags = useApi(() => unwrap(api.GET('/api/v1/tags')), [open]);
  const [form] = Form.useForm<{ add: number[]; remove: number[]; reason: string }>();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [percent, setPercent] = useState(0);

  // a definition's matches are tagged by a job on the server; the bar follows its
  // progress (customers done of all) until it finishes
  async function submit(values: { add?: number[]; remove?: number[]; reason?: string }) {
    setBusy(true);
    setError(null);
    setPercent(0);
    const change = { add: values.add ?? [], remove: values.remove ?? [], reason: values.reason || null };
    try {
      let summary: string;
      if (definition) {
        const queued = (await unwrap(api.POST('/api/v1/customers/bulk-tag', { body: { ...change, definition } }))) as Schemas['JobQueued'];
        for (;;) {
          const job: Schemas['Job'] = await unwrap(api.GET('/api/v1/jobs/{id}', { params: { path: { id: queued.job_id } } }));
          const total = job.progress.total ?? 0;
          setPercent(total > 0 ? Math.min(100, Math.floor((job.progress.done / total) * 100)) : 0);
          if (job.state === 'done') {
            summary = job.progress.message ?? '';
            break;
          }
          if (job.state === 'dead' || job.state === 'cancelled') {
            throw new Error(job.last_error ?? job.state);
          }
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      } else {
        const done = (await unwrap(api.POST('/api/v1/customers/bulk-tag', { body: { ...change, customer_ids: customerIds } }))) as Schemas['BulkTaggingResult'];
        summary = `+${done.added} / −${done.removed}`;
      }
      void message.success(summary);
      form.resetFields();
      onClose(true);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  }

  const options = (tags.data ?? []).map((tag) => ({ value: tag.id, label: tag.name }));
  return (
    <Modal open={open} title={t('customers.bulkTag')} onCancel={() => onClose(false)} onOk={() => form.submit()} confirmLoading={busy} okText={t('common.save')} cancelText={t('common.cancel')}>
      <Typography.Paragraph type="secondary">
        {definition ? <code>{definition}</code> : t('customers.selected', { n: customerIds.length })}
      </Typography.Paragraph>
      {busy && <Progress percent={definition ? percent : 99} status="active" showInfo={!!definition} aria-label={t('customers.bulkTag')} style={{ marginBottom: 12 }} data-testid="bulk-tag-progress" />}
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 12 }} />}
      <Form form={form} layout="vertical" onFinish={submit}>
        <Form.Item name="add" label={t('tagRules.add')}>
          <Select mode="multiple" options={options} optionFilterProp="label" data-testid="bulk-add" />
        </Form.Item>
        <Form.Item name="remove" label={t('tagRules.remove')}>
          <Select mode="multiple" options={options} optionFilterProp="label" />
        </Form.Item>
        <Form.Item name="reason" label="Reason">
          <Input maxLength={200} />
        </Form.Item>
      </Form>
    </Modal>
  );
}

/** Hands the selected customers to a staff member (分配客户). */
function AssignModal({ open, customerIds, onClose }: { open: boolean; customerIds: number[]; onClose: (done: boolean) => void }) {
  const { t } = useLocale();
  const { message } = App.useApp();
  const staff = useApi(() => (open ? unwrap(api.GET('/api/v1/staff', { params: { query: { limit: 500 } } })) : Promise.resolve(null)), [open]);
  const [owner, setOwner] = useState<number | undefined>();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit() {
    setBusy(true);
    setError(null);
    try {
      const result = await unwrap(api.POST('/api/v1/customers/assign', { body: { customer_ids: customerIds, owner_staff_id: owner ?? null } }));
      void message.success(`${result.assigned}`);
      setOwner(undefined);
      onClose(true);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal open={open} title={t('customers.assign')} onCancel={() => onClose(false)} onOk={submit} confirmLoading={busy} okText={t('common.save')} cancelText={t('common.cancel')}>
      <Typography.Paragraph type="secondary">{t('customers.selected', { n: customerIds.length })}</Typography.Paragraph>
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 12 }} />}
      <Select
        aria-label={t('customers.owner')}
        placeholder={t('customers.owner')}
        allowClear
        showSearch
        optionFilterProp="label"
        style={{ width: '100%' }}
        value={owner}
        onChange={setOwner}
        options={(staff.data?.items ?? []).filter((m) => m.status === 'active').map((m) => ({ value: m.id, label: `${m.name} (${m.email})` }))}
      />
    </Modal>
  );
}
