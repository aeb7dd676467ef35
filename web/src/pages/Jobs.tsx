// Background jobs (imports, backfills, sends): newest first with their state, a progress
// bar, tries and the last error, filtered by kind and state. While any job shown waits or
// runs the list is read again every two seconds, so progress moves live. Those with
// jobs.manage cancel a waiting job or retry a dead or cancelled one.
import { Alert, Button, Form, Input, Popconfirm, Select, Space, Table, Typography } from 'antd';
import { JobProgressCell, JobStateTag, jobLive } from '../components/JobProgress';
import { useEffect, useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { formatNumber, formatTime } from '../format';
import { useLocale, type MessageKey } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';

type Job = Schemas['Job'];
type JobState = Schemas['JobState'];

const STATES: JobState[] = ['waiting', 'running', 'done', 'dead', 'cancelled'];

const POLL_MS = 2000;
const PAGE = 50;

export function JobsPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const [filters, setFilters] = useState<{ kind?: string; status?: JobState }>({});
  const [limit, setLimit] = useState(PAGE);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<number | null>(null);
  const jobs = useApi(
    () => unwrap(api.GET('/api/v1/jobs', { params: { query: { kind: filters.kind || undefined, status: filters.status, limit } } })),
    [filters, limit],
  );
  const items = jobs.data?.items ?? [];
  const live = items.some(jobLive);

  useEffect(() => {
    if (!live) return;
    const timer = window.setInterval(() => void jobs.reload(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [live, jobs]);

  async function act(job: Job, action: 'cancel' | 'retry') {
    setBusy(job.id);
    setError(null);
    try {
      const path = action === 'cancel' ? '/api/v1/jobs/{id}/cancel' : '/api/v1/jobs/{id}/retry';
      await unwrap(api.POST(path, { params: { path: { id: job.id } } }));
      await jobs.reload();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(null);
    }
  }

  const stateName = (s: JobState) => t(`jobs.state.${s}` as MessageKey);

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t('nav.jobs')}
      </Typography.Title>
      <Form layout="inline" onFinish={(v: { kind?: string }) => setFilters((f) => ({ ...f, kind: v.kind?.trim() || undefined }))} style={{ rowGap: 8 }}>
        <Form.Item name="kind" label={t('jobs.kind')}>
          <Input allowClear aria-label={t('jobs.kind')} placeholder="import.csv" data-testid="jobs-kind" style={{ width: 200 }} />
        </Form.Item>
        <Form.Item label={t('jobs.state')}>
          <Select
            aria-label={t('jobs.state')}
            data-testid="jobs-state"
            value={filters.status ?? ''}
            onChange={(v: JobState | '') => setFilters((f) => ({ ...f, status: v || undefined }))}
            style={{ width: 140 }}
            options={[{ value: '', label: t('common.all') }, ...STATES.map((s) => ({ value: s, label: stateName(s) }))]}
          />
        </Form.Item>
        <Button htmlType="submit">{t('common.search')}</Button>
      </Form>
      {(error || jobs.error) && <Alert type="error" showIcon title={error ?? jobs.error} role="alert" />}
      <Table<Job>
        rowKey="id"
        dataSource={items}
        loading={jobs.loading && !jobs.data}
        pagination={false}
        scroll={{ x: 960 }}
        columns={[
          { title: 'ID', dataIndex: 'id', width: 64 },
          { title: t('jobs.kind'), dataIndex: 'kind', width: 170, ellipsis: true, render: (k: string) => <code title={k}>{k}</code> },
          {
            title: t('jobs.state'),
            dataIndex: 'state',
            width: 96,
            render: (_: JobState, j) => <JobStateTag job={j} />,
          },
          { title: t('jobs.progress'), key: 'progress', width: 200, render: (_: unknown, j) => <JobProgressCell job={j} /> },
          { title: t('jobs.attempts'), key: 'attempts', width: 80, align: 'right', render: (_: unknown, j) => `${j.attempts} / ${j.max_attempts}` },
          {
            title: t('jobs.lastError'),
            dataIndex: 'last_error',
            ellipsis: true,
            render: (e: string | null) => (e ? <Typography.Text type="danger" title={e}>{e}</Typography.Text> : '—'),
          },
          {
            title: t('jobs.times'),
            key: 'times',
            width: 150,
            render: (_: unknown, j) => (
              <>
                <div title={t('common.created')}>{formatTime(locale, j.created_at)}</div>
                <Typography.Text type="secondary" title={t('jobs.updated')}>
                  {formatTime(locale, j.updated_at)}
                </Typography.Text>
              </>
            ),
          },
          ...(can('jobs.manage')
            ? [
                {
                  title: t('common.actions'),
                  key: 'actions',
                  width: 96,
                  render: (_: unknown, j: Job) =>
                    j.state === 'waiting' ? (
                      <Popconfirm title={t('jobs.confirmCancel')} onConfirm={() => act(j, 'cancel')}>
                        <Button size="small" danger loading={busy === j.id} data-testid={`cancel-job-${j.id}`}>
                          {t('jobs.cancel')}
                        </Button>
                      </Popconfirm>
                    ) : j.state === 'dead' || j.state === 'cancelled' ? (
                      <Button size="small" loading={busy === j.id} onClick={() => act(j, 'retry')} data-testid={`retry-job-${j.id}`}>
                        {t('jobs.retry')}
                      </Button>
                    ) : null,
                },
              ]
            : []),
        ]}
      />
      {jobs.data?.next_cursor && limit < 500 && (
        <Button block onClick={() => setLimit((n) => Math.min(n + PAGE, 500))} loading={jobs.loading}>
          {t('common.loadMore')}
        </Button>
      )}
      {items.length > 0 && (
        <Typography.Text type="secondary">
          {t('jobs.shown', { n: formatNumber(locale, items.length) })}
          {live ? ' · ' + t('jobs.live') : ''}
        </Typography.Text>
      )}
    </Space>
  );
}
