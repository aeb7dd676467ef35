// One mass send's progress: its batches (on WeCom one member's task each: the member,
// whether they sent it, what each customer got, how often they were reminded), a
// button that reminds every member who has not sent, the choice a person makes for a
// batch whose lost call siyu could not find for sure, and the recipients one by one
// with their status. Read again every two seconds while anything is under way.
import { Alert, Button, Descriptions, Drawer, Select, Space, Table, Tag, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { Link } from 'react-router';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { formatNumber, formatTime } from '../format';
import { useLocale, type MessageKey } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';

type Broadcast = Schemas['Broadcast'];
type Task = Schemas['BroadcastTask'];
type Status = Schemas['RecipientStatus'];

const POLL_MS = 2000;
const STATUSES: Status[] = ['planned', 'waiting', 'sent', 'not_friend', 'over_cap', 'refused', 'not_sent', 'member_left'];
const STATUS_COLORS: Record<string, string> = {
  planned: 'default',
  waiting: 'processing',
  sent: 'success',
  not_friend: 'warning',
  over_cap: 'warning',
  refused: 'error',
  not_sent: 'default',
  member_left: 'error',
};
const TASK_COLORS: Record<string, string> = { waiting: 'processing', confirmed: 'success', cancelled: 'default', member_left: 'error', failed: 'error', expired: 'warning' };

/** A WeCom send whose tasks are made is with WeCom (its members send it), not sent. */
export const stateKey = (b: Broadcast): MessageKey => (b.channel === 'wecom' && b.state === 'sent' ? 'broadcasts.state.handedOver' : (`broadcasts.state.${b.state}` as MessageKey));

const underWay = (tasks: Task[]) => tasks.some((t) => t.task_state === 'waiting' || ['planned', 'sending'].includes(t.state));

export function BroadcastDetail({ send, onClose, onChanged }: { send: Broadcast; onClose: () => void; onChanged: () => Promise<void> }) {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const [status, setStatus] = useState<Status | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const id = send.id;
  const tasks = useApi(() => unwrap(api.GET('/api/v1/broadcasts/{id}/tasks', { params: { path: { id } } })), [id]);
  const recipients = useApi(() => unwrap(api.GET('/api/v1/broadcasts/{id}/recipients', { params: { path: { id }, query: { status, limit: 100 } } })), [id, status]);
  const rows = tasks.data ?? [];
  const following = underWay(rows);
  const wecom = send.channel === 'wecom';

  useEffect(() => {
    if (!following) return;
    const timer = window.setInterval(() => {
      void tasks.reload();
      void recipients.reload();
    }, POLL_MS);
    return () => window.clearInterval(timer);
  }, [following, tasks, recipients]);

  async function act(work: () => Promise<string | null>) {
    setError(null);
    setNote(null);
    try {
      setNote(await work());
      await Promise.all([tasks.reload(), recipients.reload(), onChanged()]);
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  const remind = () =>
    act(async () => {
      const queued = await unwrap(api.POST('/api/v1/broadcasts/{id}/remind', { params: { path: { id } } }));
      return t('broadcasts.reminded', { n: formatNumber(locale, queued.members) });
    });
  const resolve = (batch: number, body: Schemas['BatchResolution']) =>
    act(async () => {
      await unwrap(api.POST('/api/v1/broadcasts/{id}/batches/{batch}/resolve', { params: { path: { id, batch } }, body }));
      return null;
    });

  const n = (v: number) => formatNumber(locale, v);
  const canRemind = wecom && can('broadcasts.write') && send.state !== 'cancelled' && rows.some((r) => r.task_state === 'waiting');
  return (
    <Drawer open width={880} title={`${t('broadcasts.details')} · ${send.name}`} onClose={onClose} data-testid="broadcast-detail">
      <Space orientation="vertical" size={16} style={{ width: '100%' }}>
        {(error || tasks.error || recipients.error) && <Alert type="error" showIcon role="alert" title={error ?? tasks.error ?? recipients.error} />}
        {note && <Alert type="success" showIcon title={note} data-testid="broadcast-note" />}
        <Descriptions size="small" column={2} bordered>
          <Descriptions.Item label={t('broadcasts.channel')}>{t(`broadcasts.channel.${send.channel}` as MessageKey)}</Descriptions.Item>
          <Descriptions.Item label={t('broadcasts.state')}>{t(stateKey(send))}</Descriptions.Item>
          <Descriptions.Item label={t('broadcasts.sendAt')}>{formatTime(locale, send.send_at)}</Descriptions.Item>
          <Descriptions.Item label={t('broadcasts.recipients')}>{send.recipients === null || send.recipients === undefined ? '—' : n(send.recipients)}</Descriptions.Item>
        </Descriptions>
        <Space style={{ justifyContent: 'space-between', width: '100%' }}>
          <Typography.Title level={5} style={{ margin: 0 }}>
            {t('broadcasts.tasks')}
          </Typography.Title>
          {canRemind && (
            <Button onClick={remind} data-testid="broadcast-remind">
              {t('broadcasts.remind')}
            </Button>
          )}
        </Space>
        <Table<Task>
          data-testid="broadcast-tasks"
          rowKey="batch"
          size="small"
          loading={tasks.loading && !tasks.data}
          dataSource={rows}
          pagination={false}
          scroll={{ x: 760 }}
          columns={[
            {
              title: t('broadcasts.member'),
              key: 'member',
              render: (_, r) => (r.member_userid ? `${r.member_name ?? r.member_userid}` : t('broadcasts.batch', { n: r.batch + 1 })),
            },
            { title: t('broadcasts.recipients'), dataIndex: 'recipients', width: 90, render: (v: number) => n(v) },
            {
              title: t('broadcasts.state'),
              key: 'state',
              width: 150,
              render: (_, r) =>
                r.task_state ? (
                  <Tag color={TASK_COLORS[r.task_state]} data-testid={`task-state-${r.batch}`} data-state={r.task_state}>
                    {t(`broadcasts.task.${r.task_state}` as MessageKey)}
                  </Tag>
                ) : (
                  <Tag color={r.state === 'unresolved' ? 'error' : 'default'} data-testid={`task-state-${r.batch}`} data-state={r.state}>
                    {t(`broadcasts.batchState.${r.state}` as MessageKey)}
                  </Tag>
                ),
            },
            {
              title: t('broadcasts.results'),
              key: 'results',
              render: (_, r) => (
                <Space size={[4, 4]} wrap data-testid={`task-results-${r.batch}`}>
                  {STATUSES.filter((s) => (r.results[s] ?? 0) > 0).map((s) => (
                    <Tag key={s} color={STATUS_COLORS[s]}>
                      {t(`broadcasts.status.${s}` as MessageKey)} {n(r.results[s] ?? 0)}
                    </Tag>
                  ))}
                </Space>
              ),
            },
            { title: t('broadcasts.reminders'), key: 'reminders', width: 80, render: (_, r) => (wecom ? n(r.reminders.length) : '—') },
          ]}
          expandable={{
            rowExpandable: (r) => r.state === 'unresolved' && !!r.unresolved,
            expandedRowRender: (r) => (
              <Space orientation="vertical" data-testid={`unresolved-${r.batch}`}>
                <Typography.Text>{t('broadcasts.unresolved')}</Typography.Text>
                {can('broadcasts.write') && (
                  <Space wrap>
                    {(r.unresolved?.msgids ?? []).map((msgid) => (
                      <Button key={msgid} size="small" onClick={() => resolve(r.batch, { outcome: 'sent', msgid })}>
                        {t('broadcasts.resolveSent', { msgid })}
                      </Button>
                    ))}
                    {send.state !== 'cancelled' && (
                      <Button size="small" onClick={() => resolve(r.batch, { outcome: 'send_again' })}>
                        {t('broadcasts.resolveAgain')}
                      </Button>
                    )}
                    <Button size="small" danger onClick={() => resolve(r.batch, { outcome: 'not_sent' })}>
                      {t('broadcasts.resolveNotSent')}
                    </Button>
                  </Space>
                )}
              </Space>
            ),
          }}
        />
        <Space style={{ justifyContent: 'space-between', width: '100%' }}>
          <Typography.Title level={5} style={{ margin: 0 }}>
            {t('broadcasts.recipientsList')}
          </Typography.Title>
          <Select<Status | undefined>
            aria-label={t('broadcasts.allStatuses')}
            allowClear
            placeholder={t('broadcasts.allStatuses')}
            value={status}
            onChange={setStatus}
            style={{ width: 200 }}
            options={STATUSES.map((s) => ({ value: s, label: t(`broadcasts.status.${s}` as MessageKey) }))}
          />
        </Space>
        <Table<Schemas['BroadcastRecipient']>
          data-testid="broadcast-recipients"
          rowKey={(r) => `${r.batch}-${r.customer_id}`}
          size="small"
          loading={recipients.loading && !recipients.data}
          dataSource={recipients.data?.items ?? []}
          pagination={false}
          columns={[
            { title: t('broadcasts.customer'), dataIndex: 'customer_id', render: (v: number) => <Link to={`/customers/${v}`}>#{v}</Link> },
            { title: t('broadcasts.member'), dataIndex: 'member_userid', render: (v: string | null) => v ?? '—' },
            {
              title: t('broadcasts.state'),
              dataIndex: 'status',
              render: (s: Status) => <Tag color={STATUS_COLORS[s]}>{t(`broadcasts.status.${s}` as MessageKey)}</Tag>,
            },
            { title: t('broadcasts.sendAt'), dataIndex: 'status_at', render: (v: string | null) => (v ? formatTime(locale, v) : '—') },
          ]}
        />
      </Space>
    </Drawer>
  );
}
