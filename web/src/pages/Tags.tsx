// Tags in their groups, and tag rules (自动打标签) that add or remove tags when a
// definition in the segment language holds.
import { PlusOutlined } from '@ant-design/icons';
import { Alert, App, Button, Card, Checkbox, ColorPicker, Form, Input, Modal, Popconfirm, Select, Space, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { ColourTag } from '../components/ColourTag';
import { FollowJob } from '../components/JobProgress';
import { formatNumber, formatTime } from '../format';
import { useLocale } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';

export function TagsPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const { message } = App.useApp();
  const groups = useApi(() => unwrap(api.GET('/api/v1/tag-groups')), []);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState<'group' | number | null>(null);
  const [form] = Form.useForm<{ name: string; colour: string }>();
  // a group renamed, or a tag renamed, recoloured or moved to another group (segments
  // and rules that name a renamed tag are rewritten by the server)
  const [editing, setEditing] = useState<{ group: Schemas['TagGroup'] } | { tag: Schemas['Tag'] } | null>(null);
  const [editForm] = Form.useForm<{ name: string; colour?: unknown; group_id?: number }>();

  function edit(target: { group: Schemas['TagGroup'] } | { tag: Schemas['Tag'] }) {
    setEditing(target);
    editForm.setFieldsValue('tag' in target ? { name: target.tag.name, colour: target.tag.colour, group_id: target.tag.group_id } : { name: target.group.name });
  }

  async function saveEdit(values: { name: string; colour?: unknown; group_id?: number }) {
    if (!editing) return;
    const ok = await act(() => {
      if ('group' in editing) {
        return unwrap(api.PATCH('/api/v1/tag-groups/{id}', { params: { path: { id: editing.group.id } }, body: { name: values.name } }));
      }
      const colour = typeof values.colour === 'string' ? values.colour : (values.colour as { toHexString?: () => string } | undefined)?.toHexString?.();
      return unwrap(
        api.PATCH('/api/v1/tags/{id}', {
          params: { path: { id: editing.tag.id } },
          body: { name: values.name, colour: colour ?? null, group_id: values.group_id ?? null },
        }),
      );
    });
    if (ok) setEditing(null);
  }

  async function act(run: () => Promise<unknown>) {
    setError(null);
    try {
      await run();
      void message.success(t('common.saved'));
      void groups.reload();
      return true;
    } catch (e) {
      setError(errorMessage(e));
      return false;
    }
  }

  async function create(values: { name: string; colour?: unknown }) {
    const colour = typeof values.colour === 'string' ? values.colour : (values.colour as { toHexString?: () => string } | undefined)?.toHexString?.() ?? '#1f5eff';
    const ok = await act(() =>
      creating === 'group'
        ? unwrap(api.POST('/api/v1/tag-groups', { body: { name: values.name } }))
        : unwrap(api.POST('/api/v1/tags', { body: { group_id: creating as number, name: values.name, colour } })),
    );
    if (ok) {
      setCreating(null);
      form.resetFields();
    }
  }

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('nav.tags')}
        </Typography.Title>
        {can('tags.write') && (
          <Button icon={<PlusOutlined />} onClick={() => setCreating('group')}>
            {t('tags.groups')}
          </Button>
        )}
      </Space>
      {(error || groups.error) && <Alert type="error" showIcon title={error ?? groups.error} role="alert" />}
      {(groups.data ?? []).map((g) => (
        <Card
          key={g.id}
          size="small"
          title={g.name}
          extra={
            can('tags.write') && (
              <Space>
                <Button size="small" icon={<PlusOutlined />} onClick={() => setCreating(g.id)}>
                  {t('nav.tags')}
                </Button>
                <Button size="small" onClick={() => edit({ group: g })}>
                  {t('common.edit')}
                </Button>
                <Popconfirm title={t('common.confirmDelete')} onConfirm={() => act(() => unwrap(api.DELETE('/api/v1/tag-groups/{id}', { params: { path: { id: g.id } } })))}>
                  <Button size="small" danger>
                    {t('common.delete')}
                  </Button>
                </Popconfirm>
              </Space>
            )
          }
        >
          <Table
            size="small"
            rowKey="id"
            pagination={false}
            dataSource={g.tags}
            columns={[
              { title: t('common.name'), dataIndex: 'name', render: (n: string, tag: Schemas['Tag']) => <ColourTag colour={tag.colour}>{n}</ColourTag> },
              { title: t('tags.customers'), dataIndex: 'customers', align: 'right', render: (n: number) => formatNumber(locale, n) },
              {
                title: t('common.actions'),
                key: 'actions',
                render: (_: unknown, tag: Schemas['Tag']) =>
                  can('tags.write') && (
                    <Space size={0}>
                      <Button size="small" type="link" onClick={() => edit({ tag })} data-testid={`edit-tag-${tag.name}`}>
                        {t('common.edit')}
                      </Button>
                      <Popconfirm title={t('common.confirmDelete')} onConfirm={() => act(() => unwrap(api.DELETE('/api/v1/tags/{id}', { params: { path: { id: tag.id } } })))}>
                        <Button size="small" type="link" danger>
                          {t('common.delete')}
                        </Button>
                      </Popconfirm>
                    </Space>
                  ),
              },
            ]}
          />
        </Card>
      ))}
      <Modal open={creating !== null} title={creating === 'group' ? t('tags.groups') : t('nav.tags')} onCancel={() => setCreating(null)} onOk={() => form.submit()} okText={t('common.save')} cancelText={t('common.cancel')}>
        <Form form={form} layout="vertical" onFinish={create}>
          <Form.Item name="name" label={t('common.name')} rules={[{ required: true, max: 50 }]}>
            <Input />
          </Form.Item>
          {creating !== 'group' && (
            <Form.Item name="colour" label={t('tags.color')} initialValue="#1f5eff">
              <ColorPicker />
            </Form.Item>
          )}
        </Form>
      </Modal>
      <Modal
        open={editing !== null}
        title={editing && 'group' in editing ? t('tags.groups') : t('nav.tags')}
        onCancel={() => setEditing(null)}
        onOk={() => editForm.submit()}
        okText={t('common.save')}
        cancelText={t('common.cancel')}
        forceRender
      >
        <Form form={editForm} layout="vertical" onFinish={saveEdit}>
          <Form.Item name="name" label={t('common.name')} rules={[{ required: true, max: 50 }]}>
            <Input data-testid="edit-name" />
          </Form.Item>
          {editing && 'tag' in editing && (
            <>
              <Form.Item name="colour" label={t('tags.color')}>
                <ColorPicker />
              </Form.Item>
              <Form.Item name="group_id" label={t('tags.groups')}>
                <Select options={(groups.data ?? []).map((g) => ({ value: g.id, label: g.name }))} />
              </Form.Item>
            </>
          )}
        </Form>
      </Modal>
    </Space>
  );
}

export function TagRulesPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const rules = useApi(() => unwrap(api.GET('/api/v1/tag-rules')), []);
  const tags = useApi(() => unwrap(api.GET('/api/v1/tags')), []);
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [form] = Form.useForm<{ name: string; definition: string; add: number[]; remove: number[]; enabled: boolean }>();
  // the job applying a rule just saved to the customers it matches now
  const [backfill, setBackfill] = useState<{ rule: string; job: number } | null>(null);
  const tagName = (id: number) => tags.data?.find((x) => x.id === id)?.name ?? `#${id}`;

  async function create(values: { name: string; definition: string; add?: number[]; remove?: number[]; enabled: boolean }) {
    setError(null);
    try {
      const saved = await unwrap(api.POST('/api/v1/tag-rules', { body: { ...values, add: values.add ?? [], remove: values.remove ?? [] } }));
      if (saved.job_id != null) setBackfill({ rule: saved.rule.name, job: saved.job_id });
      setOpen(false);
      form.resetFields();
      void rules.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  async function toggle(rule: Schemas['TagRule']) {
    try {
      const saved = await unwrap(api.PATCH('/api/v1/tag-rules/{id}', { params: { path: { id: rule.id } }, body: { enabled: !rule.enabled } }));
      if (saved.job_id != null) setBackfill({ rule: saved.rule.name, job: saved.job_id });
      void rules.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('nav.tagRules')}
        </Typography.Title>
        {can('tags.write') && (
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setOpen(true)}>
            {t('common.create')}
          </Button>
        )}
      </Space>
      {(error || rules.error) && !open && <Alert type="error" showIcon title={error ?? rules.error} role="alert" />}
      {backfill && (
        <Card size="small" title={t('tagRules.backfill', { name: backfill.rule })} data-testid="rule-backfill">
          <FollowJob key={backfill.job} id={backfill.job} />
        </Card>
      )}
      <Table
        rowKey="id"
        loading={rules.loading}
        dataSource={rules.data ?? []}
        pagination={false}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('tagRules.condition'), dataIndex: 'definition', render: (d: string) => <code>{d}</code> },
          { title: t('tagRules.add'), dataIndex: 'add', render: (ids: number[]) => ids.map((id) => <Tag key={id}>{tagName(id)}</Tag>) },
          { title: t('tagRules.remove'), dataIndex: 'remove', render: (ids: number[]) => ids.map((id) => <Tag key={id}>{tagName(id)}</Tag>) },
          {
            title: t('tagRules.enabled'),
            dataIndex: 'enabled',
            render: (on: boolean, rule) => <Checkbox checked={on} disabled={!can('tags.write')} onChange={() => toggle(rule)} aria-label={t('tagRules.enabled')} />,
          },
          { title: t('common.created'), dataIndex: 'created_at', render: (v: string) => formatTime(locale, v) },
        ]}
      />
      <Modal open={open} title={t('nav.tagRules')} onCancel={() => setOpen(false)} onOk={() => form.submit()} okText={t('common.save')} cancelText={t('common.cancel')} width={640}>
        {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 12 }} />}
        <Form form={form} layout="vertical" onFinish={create} initialValues={{ enabled: true }}>
          <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
          <Form.Item name="definition" label={t('tagRules.condition')} rules={[{ required: true }]}>
            <Input.TextArea rows={3} placeholder='orders.sum(last 365d) >= 10000' style={{ fontFamily: 'ui-monospace, monospace' }} />
          </Form.Item>
          <Form.Item name="add" label={t('tagRules.add')}>
            <Select mode="multiple" optionFilterProp="label" options={(tags.data ?? []).map((x) => ({ value: x.id, label: x.name }))} />
          </Form.Item>
          <Form.Item name="remove" label={t('tagRules.remove')}>
            <Select mode="multiple" optionFilterProp="label" options={(tags.data ?? []).map((x) => ({ value: x.id, label: x.name }))} />
          </Form.Item>
          <Form.Item name="enabled" valuePropName="checked">
            <Checkbox>{t('tagRules.enabled')}</Checkbox>
          </Form.Item>
        </Form>
      </Modal>
    </Space>
  );
}
