// Quick replies (快捷回复/话术): the words service staff send again and again. The
// tenant's library is shared (content staff change it); each member of staff keeps a
// personal one. Both are searched in Chinese by words (the API segments them), and each
// copy to send counts a use, so the most used come first. The page manages them; the
// panel sits beside a customer, to find and copy one while talking to them.
import { CopyOutlined, PlusOutlined } from '@ant-design/icons';
import { Alert, App, Button, Card, Form, Input, InputNumber, List, Select, Space, Table, Tag, Typography } from 'antd';
import { useMemo, useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { FormModal } from '../components/FormModal';
import { actionsColumn } from '../components/RowActions';
import { formatTime } from '../format';
import { useLocale } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';

type Reply = Schemas['QuickReply'];
type Group = Schemas['QuickReplyGroup'];
type Library = Schemas['QuickReplyLibrary'];
type ReplyValues = { library: Library; group_id?: number | null; title: string; text: string; content_id?: number | null };
type GroupValues = { library: Library; name: string; position?: number };

/** The replies a query finds (best first), or all the caller sees, most used first. */
function useReplies(q: string, library?: Library, groupId?: number) {
  return useApi(async () => {
    const query = { q: q || undefined, library, group_id: groupId, limit: q ? 50 : 500 };
    const page = await unwrap(api.GET('/api/v1/quick-replies', { params: { query } }));
    return q ? page.items : [...page.items].sort((a, b) => b.use_count - a.use_count);
  }, [q, library, groupId]);
}

function LibraryTag({ library }: { library: Library }) {
  const { t } = useLocale();
  return <Tag color={library === 'tenant' ? 'blue' : 'green'}>{t(library === 'tenant' ? 'quickReplies.tenant' : 'quickReplies.personal')}</Tag>;
}

/** Copies a reply's text and counts the use; answers the reply as counted. */
async function copyAndCount(reply: Reply): Promise<Reply> {
  await navigator.clipboard?.writeText(reply.text).catch(() => undefined);
  return unwrap(api.POST('/api/v1/quick-replies/{id}/uses', { params: { path: { id: reply.id } } }));
}

/** Beside a customer: search, copy to send, counted. */
export function QuickRepliesPanel() {
  const { t } = useLocale();
  const { message } = App.useApp();
  const [q, setQ] = useState('');
  const replies = useReplies(q);
  const groups = useApi(() => unwrap(api.GET('/api/v1/quick-reply-groups')), []);
  const groupName = useMemo(() => new Map((groups.data ?? []).map((g) => [g.id, g.name])), [groups.data]);

  async function copy(reply: Reply) {
    try {
      const counted = await copyAndCount(reply);
      replies.setData((replies.data ?? []).map((r) => (r.id === counted.id ? counted : r)));
      void message.success(t('quickReplies.copied'));
    } catch (e) {
      void message.error(errorMessage(e));
    }
  }
  return (
    <Card size="small" title={t('quickReplies.title')} data-testid="quick-replies">
      <Input.Search allowClear placeholder={t('quickReplies.search')} aria-label={t('quickReplies.search')} data-testid="quick-reply-search" onSearch={(v) => setQ(v.trim())} />
      {replies.error && <Alert type="error" showIcon title={replies.error} />}
      <List
        size="small"
        loading={replies.loading}
        dataSource={(replies.data ?? []).slice(0, 20)}
        locale={{ emptyText: t('common.empty') }}
        style={{ maxHeight: 420, overflowY: 'auto' }}
        renderItem={(r) => (
          <List.Item
            data-testid={`quick-reply-${r.id}`}
            actions={[
              <Button key="copy" size="small" icon={<CopyOutlined />} onClick={() => copy(r)} data-testid={`use-quick-reply-${r.id}`}>
                {t('quickReplies.copy')}
              </Button>,
            ]}
          >
            <List.Item.Meta
              title={
                <Space size={4} wrap>
                  <Typography.Text strong>{r.title}</Typography.Text>
                  {r.group_id != null && <Tag>{groupName.get(r.group_id)}</Tag>}
                  <Typography.Text type="secondary" data-testid={`quick-reply-uses-${r.id}`}>
                    {t('quickReplies.uses', { count: r.use_count })}
                  </Typography.Text>
                </Space>
              }
              description={<Typography.Paragraph ellipsis={{ rows: 3 }} style={{ margin: 0 }}>{r.text}</Typography.Paragraph>}
            />
          </List.Item>
        )}
      />
    </Card>
  );
}

/** The libraries: groups, replies, search, and changes for those who may make them. */
export function QuickRepliesPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const manager = can('content.write');
  const [q, setQ] = useState('');
  const [library, setLibrary] = useState<Library | undefined>();
  const [groupId, setGroupId] = useState<number | undefined>();
  const replies = useReplies(q, library, groupId);
  const groups = useApi(() => unwrap(api.GET('/api/v1/quick-reply-groups')), []);
  const content = useApi(() => unwrap(api.GET('/api/v1/content', { params: { query: { limit: 500 } } })), []);
  const [editing, setEditing] = useState<Reply | 'new' | null>(null);
  const [groupOpen, setGroupOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [form] = Form.useForm<ReplyValues>();
  const [groupForm] = Form.useForm<GroupValues>();
  const current = editing !== null && editing !== 'new' ? editing : null;
  const shownLibrary = Form.useWatch('library', form) ?? current?.library ?? 'personal';
  const libraries: Library[] = manager ? ['personal', 'tenant'] : ['personal'];
  const groupName = new Map((groups.data ?? []).map((g) => [g.id, g.name]));
  const mayChange = (r: { library: Library }) => r.library === 'personal' || manager;

  async function submitReply(v: ReplyValues) {
    const body = { group_id: v.group_id ?? null, title: v.title, text: v.text, content_id: v.content_id ?? null };
    if (!current) {
      await unwrap(api.POST('/api/v1/quick-replies', { body: { ...body, library: v.library, group_id: v.group_id ?? undefined, content_id: v.content_id ?? undefined } }));
    } else {
      await unwrap(api.PATCH('/api/v1/quick-replies/{id}', { params: { path: { id: current.id } }, body }));
    }
    await Promise.all([replies.reload(), groups.reload()]);
  }

  async function submitGroup(v: GroupValues) {
    await unwrap(api.POST('/api/v1/quick-reply-groups', { body: v }));
    await groups.reload();
  }

  async function removeReply(r: Reply) {
    setError(null);
    try {
      await unwrap(api.DELETE('/api/v1/quick-replies/{id}', { params: { path: { id: r.id } } }));
      await Promise.all([replies.reload(), groups.reload()]);
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  async function removeGroup(g: Group) {
    setError(null);
    try {
      await unwrap(api.DELETE('/api/v1/quick-reply-groups/{id}', { params: { path: { id: g.id } } }));
      if (groupId === g.id) setGroupId(undefined);
      await groups.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  type Row = Reply & { name: string };
  const rows: Row[] = (replies.data ?? []).map((r) => ({ ...r, name: r.title }));
  const [actions] = actionsColumn<Row>(true, t('common.actions'), {
    kind: 'quick-reply',
    confirm: (r) => t('quickReplies.confirmDelete', { name: r.title }),
    onEdit: (r) => setEditing(r),
    onDelete: (r) => void removeReply(r),
  });

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('quickReplies.title')}
        </Typography.Title>
        <Space>
          <Button icon={<PlusOutlined />} onClick={() => setGroupOpen(true)} data-testid="new-quick-reply-group">
            {t('quickReplies.newGroup')}
          </Button>
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="new-quick-reply">
            {t('quickReplies.new')}
          </Button>
        </Space>
      </Space>
      <Space wrap data-testid="quick-reply-groups">
        {(groups.data ?? []).map((g) => (
          <Tag
            key={g.id}
            color={groupId === g.id ? 'processing' : undefined}
            closable={mayChange(g)}
            onClose={(e) => {
              e.preventDefault();
              void removeGroup(g);
            }}
            onClick={() => setGroupId(groupId === g.id ? undefined : g.id)}
            style={{ cursor: 'pointer' }}
            data-testid={`quick-reply-group-${g.id}`}
          >
            {g.name} ({g.replies})
          </Tag>
        ))}
      </Space>
      <Space wrap>
        <Select allowClear placeholder={t('quickReplies.library')} aria-label={t('quickReplies.library')} style={{ width: 140 }} onChange={(l?: Library) => setLibrary(l)}
          options={(['tenant', 'personal'] as Library[]).map((l) => ({ value: l, label: t(l === 'tenant' ? 'quickReplies.tenant' : 'quickReplies.personal') }))} />
        <Input.Search allowClear placeholder={t('quickReplies.search')} aria-label={t('quickReplies.search')} style={{ width: 260 }} data-testid="quick-reply-page-search" onSearch={(v) => setQ(v.trim())} />
      </Space>
      {(error || replies.error) && <Alert type="error" showIcon title={error ?? replies.error} role="alert" />}
      <Table<Row>
        data-testid="quick-reply-list"
        size="small"
        rowKey="id"
        loading={replies.loading}
        dataSource={rows}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        columns={[
          { title: t('quickReplies.replyTitle'), dataIndex: 'title', render: (title: string, r: Row) => <span data-testid={`quick-reply-row-${r.id}`}>{title}</span> },
          { title: t('quickReplies.group'), dataIndex: 'group_id', render: (g: number | null) => (g != null ? groupName.get(g) : '—') },
          { title: t('quickReplies.library'), dataIndex: 'library', render: (l: Library) => <LibraryTag library={l} /> },
          { title: t('quickReplies.text'), dataIndex: 'text', ellipsis: true },
          { title: t('quickReplies.useCount'), dataIndex: 'use_count', align: 'right' },
          { title: t('quickReplies.lastUsed'), dataIndex: 'last_used_at', render: (at: string | null) => (at ? formatTime(locale, at) : '—') },
          { ...actions, render: (v: unknown, r: Row) => (mayChange(r) ? actions.render(v, r) : null) },
        ]}
      />
      <FormModal<ReplyValues>
        open={editing !== null}
        title={current ? t('quickReplies.edit') : t('quickReplies.new')}
        form={form}
        values={current ? { library: current.library, group_id: current.group_id, title: current.title, text: current.text, content_id: current.content_id } : { library: 'personal' }}
        onClose={() => setEditing(null)}
        submit={submitReply}
        fieldOf={(f) => (['library', 'group_id', 'title', 'text', 'content_id'].includes(f) ? [f] : null)}
        name="quick-reply-form"
        width={600}
      >
        <Form.Item name="library" label={t('quickReplies.library')} rules={[{ required: true }]}>
          <Select disabled={!!current} data-testid="quick-reply-library"
            options={libraries.map((l) => ({ value: l, label: t(l === 'tenant' ? 'quickReplies.tenant' : 'quickReplies.personal') }))} />
        </Form.Item>
        <Form.Item name="group_id" label={t('quickReplies.group')}>
          <Select allowClear data-testid="quick-reply-group"
            options={(groups.data ?? []).filter((g) => g.library === shownLibrary).map((g) => ({ value: g.id, label: g.name }))} />
        </Form.Item>
        <Form.Item name="title" label={t('quickReplies.replyTitle')} rules={[{ required: true, whitespace: true, max: 60 }]}>
          <Input data-testid="quick-reply-title" />
        </Form.Item>
        <Form.Item name="text" label={t('quickReplies.text')} rules={[{ required: true, whitespace: true, max: 2000 }]}>
          <Input.TextArea rows={5} data-testid="quick-reply-text" />
        </Form.Item>
        <Form.Item name="content_id" label={t('quickReplies.attachment')}>
          <Select allowClear showSearch optionFilterProp="label"
            options={(content.data?.items ?? []).filter((i) => i.kind !== 'text').map((i) => ({ value: i.id, label: i.title }))} />
        </Form.Item>
      </FormModal>
      <FormModal<GroupValues>
        open={groupOpen}
        title={t('quickReplies.newGroup')}
        form={groupForm}
        values={{ library: 'personal', position: 0 }}
        onClose={() => setGroupOpen(false)}
        submit={submitGroup}
        fieldOf={(f) => (['library', 'name', 'position'].includes(f) ? [f] : null)}
        name="quick-reply-group-form"
      >
        <Form.Item name="library" label={t('quickReplies.library')} rules={[{ required: true }]}>
          <Select options={libraries.map((l) => ({ value: l, label: t(l === 'tenant' ? 'quickReplies.tenant' : 'quickReplies.personal') }))} />
        </Form.Item>
        <Form.Item name="name" label={t('quickReplies.groupName')} rules={[{ required: true, whitespace: true, max: 60 }]}>
          <Input data-testid="quick-reply-group-name" />
        </Form.Item>
        <Form.Item name="position" label={t('quickReplies.position')}>
          <InputNumber />
        </Form.Item>
      </FormModal>
    </Space>
  );
}
