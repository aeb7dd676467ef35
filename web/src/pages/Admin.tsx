// Administration: staff, the unit tree, roles and their permissions, API tokens.
import { PlusOutlined } from '@ant-design/icons';
import { Alert, Button, Form, Input, InputNumber, Modal, Popconfirm, Select, Space, Table, Tag, Tree, Typography } from 'antd';
import { useMemo, useState, type ReactNode } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { formatTime } from '../format';
import { useLocale } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';

function Page({ title, action, error, children }: { title: string; action?: ReactNode; error?: string | null; children: ReactNode }) {
  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {title}
        </Typography.Title>
        {action}
      </Space>
      {error && <Alert type="error" showIcon title={error} role="alert" />}
      {children}
    </Space>
  );
}

/** A create dialog whose API error shows inside it, next to the form. */
function CreateModal<V extends object>({
  open,
  title,
  onClose,
  submit,
  children,
  initialValues,
}: {
  open: boolean;
  title: string;
  onClose: () => void;
  submit: (v: V) => Promise<unknown>;
  children: ReactNode;
  initialValues?: Partial<V>;
}) {
  const { t } = useLocale();
  const [form] = Form.useForm<V>();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function finish(values: V) {
    setBusy(true);
    setError(null);
    try {
      await submit(values);
      form.resetFields();
      onClose();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <Modal open={open} title={title} onCancel={onClose} onOk={() => form.submit()} confirmLoading={busy} okText={t('common.save')} cancelText={t('common.cancel')} destroyOnHidden>
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 12 }} />}
      <Form form={form} layout="vertical" onFinish={finish} initialValues={initialValues}>
        {children}
      </Form>
    </Modal>
  );
}

function useUnitsAndRoles() {
  const units = useApi(() => unwrap(api.GET('/api/v1/units', { params: { query: { limit: 500 } } })), []);
  const roles = useApi(() => unwrap(api.GET('/api/v1/roles', { params: { query: { limit: 200 } } })), []);
  return { units: units.data?.items ?? [], roles: roles.data?.items ?? [] };
}

export function StaffPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const staff = useApi(() => unwrap(api.GET('/api/v1/staff', { params: { query: { limit: 200 } } })), []);
  const { units, roles } = useUnitsAndRoles();
  const [open, setOpen] = useState(false);
  const [editing, setEditing] = useState<Schemas['Staff'] | null>(null);
  const unitName = (id: number) => units.find((u) => u.id === id)?.name ?? `#${id}`;
  return (
    <Page
      title={t('nav.staff')}
      error={staff.error}
      action={can('staff.write') && <Button type="primary" icon={<PlusOutlined />} onClick={() => setOpen(true)}>{t('common.create')}</Button>}
    >
      <Table
        rowKey="id"
        loading={staff.loading}
        dataSource={staff.data?.items ?? []}
        pagination={false}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('staff.email'), dataIndex: 'email' },
          { title: t('staff.role'), dataIndex: 'role', render: (r: string) => <Tag>{r}</Tag> },
          { title: t('common.unit'), dataIndex: 'unit_id', render: unitName },
          { title: 'scope', dataIndex: 'data_scope' },
          { title: t('staff.status'), dataIndex: 'status' },
          { title: t('customers.lastSeen'), dataIndex: 'last_login_at', render: (v: string | null) => formatTime(locale, v) },
          {
            title: t('common.actions'),
            key: 'a',
            render: (_: unknown, member: Schemas['Staff']) =>
              can('staff.write') && (
                <Button size="small" onClick={() => setEditing(member)}>
                  {t('common.edit')}
                </Button>
              ),
          },
        ]}
      />
      <CreateModal<Schemas['UpdateStaff']>
        key={editing?.id ?? 'none'}
        open={editing !== null}
        title={editing ? `${t('common.edit')} · ${editing.name}` : ''}
        onClose={() => setEditing(null)}
        initialValues={editing ? { name: editing.name, role: editing.role, unit_id: editing.unit_id, data_scope: editing.data_scope, status: editing.status } : {}}
        submit={async (v) => {
          if (editing) await unwrap(api.PATCH('/api/v1/staff/{id}', { params: { path: { id: editing.id } }, body: v }));
          void staff.reload();
        }}
      >
        <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
          <Input />
        </Form.Item>
        <Form.Item name="role" label={t('staff.role')}>
          <Select options={roles.map((r) => ({ value: r.name, label: r.name }))} />
        </Form.Item>
        <Form.Item name="unit_id" label={t('common.unit')}>
          <Select options={units.map((u) => ({ value: u.id, label: u.name }))} />
        </Form.Item>
        <Form.Item name="data_scope" label="scope">
          <Select options={['own', 'unit_subtree', 'tenant'].map((x) => ({ value: x, label: x }))} />
        </Form.Item>
        <Form.Item name="status" label={t('staff.status')}>
          <Select options={['active', 'disabled'].map((x) => ({ value: x, label: x }))} />
        </Form.Item>
      </CreateModal>
      <CreateModal<Schemas['CreateStaff']>
        open={open}
        title={t('nav.staff')}
        onClose={() => setOpen(false)}
        submit={async (v) => {
          await unwrap(api.POST('/api/v1/staff', { body: v }));
          void staff.reload();
        }}
      >
        <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
          <Input />
        </Form.Item>
        <Form.Item name="email" label={t('staff.email')} rules={[{ required: true, type: 'email' }]}>
          <Input />
        </Form.Item>
        <Form.Item name="password" label={t('login.password')} rules={[{ min: 10 }]}>
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item name="role" label={t('staff.role')} rules={[{ required: true }]}>
          <Select options={roles.map((r) => ({ value: r.name, label: r.name }))} />
        </Form.Item>
        <Form.Item name="unit_id" label={t('common.unit')} rules={[{ required: true }]}>
          <Select options={units.map((u) => ({ value: u.id, label: u.name }))} />
        </Form.Item>
        <Form.Item name="data_scope" label="scope" initialValue="unit_subtree">
          <Select options={['own', 'unit_subtree', 'tenant'].map((s) => ({ value: s, label: s }))} />
        </Form.Item>
      </CreateModal>
    </Page>
  );
}

export function UnitsPage() {
  const { t } = useLocale();
  const { can } = useSession();
  const units = useApi(() => unwrap(api.GET('/api/v1/units', { params: { query: { limit: 500 } } })), []);
  const [open, setOpen] = useState(false);
  // a unit renamed or moved (with everything beneath it) under another
  const [editing, setEditing] = useState<Schemas['Unit'] | null>(null);
  const tree = useMemo(() => {
    type Node = { key: number; title: ReactNode; children: Node[] };
    const items = units.data?.items ?? [];
    const nodes = new Map<number, Node>(
      items.map((u) => [
        u.id,
        {
          key: u.id,
          title: (
            <span>
              {u.name} <Tag>{u.kind}</Tag>
              {can('units.write') && (
                <Button size="small" type="link" onClick={() => setEditing(u)} data-testid={`edit-unit-${u.id}`}>
                  {t('common.edit')}
                </Button>
              )}
            </span>
          ),
          children: [],
        },
      ]),
    );
    const roots: Node[] = [];
    for (const u of items) {
      const node = nodes.get(u.id)!;
      const parent = u.parent_id ? nodes.get(u.parent_id) : undefined;
      if (parent) parent.children.push(node);
      else roots.push(node);
    }
    return roots;
  }, [units.data, can, t]);
  return (
    <Page
      title={t('nav.units')}
      error={units.error}
      action={can('units.write') && <Button type="primary" icon={<PlusOutlined />} onClick={() => setOpen(true)}>{t('common.create')}</Button>}
    >
      {tree.length > 0 && <Tree treeData={tree} defaultExpandAll selectable={false} />}
      <CreateModal<Schemas['CreateUnit']>
        open={open}
        title={t('nav.units')}
        onClose={() => setOpen(false)}
        submit={async (v) => {
          await unwrap(api.POST('/api/v1/units', { body: v }));
          void units.reload();
        }}
      >
        <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
          <Input />
        </Form.Item>
        <Form.Item name="parent_id" label="parent" rules={[{ required: true }]}>
          <Select options={(units.data?.items ?? []).map((u) => ({ value: u.id, label: u.name }))} />
        </Form.Item>
        <Form.Item name="kind" label={t('sources.kind')} rules={[{ required: true }]}>
          <Select options={['brand', 'subsidiary', 'store'].map((k) => ({ value: k, label: k }))} />
        </Form.Item>
      </CreateModal>
      {editing && (
        <CreateModal<Schemas['UpdateUnit']>
          open
          title={`${t('common.edit')} · ${editing.name}`}
          onClose={() => setEditing(null)}
          initialValues={{ name: editing.name, parent_id: editing.parent_id ?? undefined }}
          submit={async (v) => {
            await unwrap(
              api.PATCH('/api/v1/units/{id}', {
                params: { path: { id: editing.id } },
                body: { name: v.name, parent_id: v.parent_id !== editing.parent_id ? v.parent_id : undefined },
              }),
            );
            void units.reload();
          }}
        >
          <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
          {editing.parent_id != null && (
            <Form.Item name="parent_id" label="parent">
              <Select options={(units.data?.items ?? []).filter((u) => u.id !== editing.id).map((u) => ({ value: u.id, label: u.name }))} />
            </Form.Item>
          )}
        </CreateModal>
      )}
    </Page>
  );
}

export function RolesPage() {
  const { t } = useLocale();
  const { can } = useSession();
  const roles = useApi(() => unwrap(api.GET('/api/v1/roles', { params: { query: { limit: 200 } } })), []);
  const permissions = useApi(() => unwrap(api.GET('/api/v1/permissions')), []);
  // null: closed; 'new': a new role; a role: editing it
  const [editing, setEditing] = useState<'new' | Schemas['Role'] | null>(null);
  const options = (permissions.data ?? []).map((p) => ({ value: p.name, label: `${p.name} — ${p.description}` }));
  return (
    <Page
      title={t('nav.roles')}
      error={roles.error}
      action={can('roles.write') && <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="new-role">{t('common.create')}</Button>}
    >
      <Table
        rowKey="id"
        loading={roles.loading}
        dataSource={roles.data?.items ?? []}
        pagination={false}
        columns={[
          { title: t('common.name'), dataIndex: 'name', render: (n: string, r) => <span>{n} {r.builtin && <Tag>built-in</Tag>}</span> },
          { title: 'description', dataIndex: 'description' },
          { title: 'permissions', dataIndex: 'permissions', render: (ps: string[]) => <Space size={[4, 4]} wrap>{ps.map((p) => <Tag key={p}>{p}</Tag>)}</Space> },
          {
            title: t('common.actions'),
            key: 'a',
            render: (_: unknown, r) =>
              can('roles.write') && !r.builtin && (
                <Button size="small" onClick={() => setEditing(r)}>
                  {t('common.edit')}
                </Button>
              ),
          },
        ]}
      />
      <CreateModal<{ name: string; description?: string; permissions: string[] }>
        key={editing === 'new' ? 'new' : editing?.id ?? 'none'}
        open={editing !== null}
        title={t('nav.roles')}
        onClose={() => setEditing(null)}
        initialValues={editing && editing !== 'new' ? { name: editing.name, description: editing.description, permissions: editing.permissions } : { permissions: [] }}
        submit={async (v) => {
          if (editing === 'new') await unwrap(api.POST('/api/v1/roles', { body: v }));
          else if (editing) await unwrap(api.PATCH('/api/v1/roles/{id}', { params: { path: { id: editing.id } }, body: { description: v.description, permissions: v.permissions } }));
          void roles.reload();
        }}
      >
        <Form.Item name="name" label={t('common.name')} rules={[{ required: true, pattern: /^[a-z0-9_-]+$/ }]}>
          <Input disabled={editing !== 'new'} />
        </Form.Item>
        <Form.Item name="description" label="description">
          <Input />
        </Form.Item>
        <Form.Item name="permissions" label="permissions" rules={[{ required: true }]}>
          <Select mode="multiple" options={options} optionFilterProp="value" />
        </Form.Item>
      </CreateModal>
    </Page>
  );
}

export function TokensPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const tokens = useApi(() => unwrap(api.GET('/api/v1/api-tokens', { params: { query: { limit: 200 } } })), []);
  const { roles } = useUnitsAndRoles();
  const [open, setOpen] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <Page
      title={t('nav.tokens')}
      error={error ?? tokens.error}
      action={can('tokens.write') && <Button type="primary" icon={<PlusOutlined />} onClick={() => setOpen(true)}>{t('common.create')}</Button>}
    >
      {secret && <Alert type="warning" showIcon closable onClose={() => setSecret(null)} title={<span>Bearer: <Typography.Text code copyable>{secret}</Typography.Text></span>} />}
      <Table
        rowKey="id"
        loading={tokens.loading}
        dataSource={tokens.data?.items ?? []}
        pagination={false}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('staff.role'), dataIndex: 'role' },
          { title: 'prefix', dataIndex: 'display_prefix', render: (p: string) => <code>{p}…</code> },
          { title: 'expires', dataIndex: 'expires_at', render: (v: string | null) => formatTime(locale, v) },
          { title: 'last used', dataIndex: 'last_used_at', render: (v: string | null) => formatTime(locale, v) },
          { title: t('staff.status'), dataIndex: 'revoked_at', render: (v: string | null) => (v ? <Tag color="red">revoked</Tag> : <Tag color="green">active</Tag>) },
          {
            title: t('common.actions'),
            key: 'a',
            render: (_: unknown, tok) =>
              can('tokens.write') &&
              !tok.revoked_at && (
                <Popconfirm
                  title={t('common.confirmDelete')}
                  onConfirm={async () => {
                    try {
                      await unwrap(api.DELETE('/api/v1/api-tokens/{id}', { params: { path: { id: tok.id } } }));
                      void tokens.reload();
                    } catch (e) {
                      setError(errorMessage(e));
                    }
                  }}
                >
                  <Button size="small" danger>
                    {t('common.delete')}
                  </Button>
                </Popconfirm>
              ),
          },
        ]}
      />
      <CreateModal<Schemas['CreateToken']>
        open={open}
        title={t('nav.tokens')}
        onClose={() => setOpen(false)}
        submit={async (v) => {
          const created = await unwrap(api.POST('/api/v1/api-tokens', { body: v }));
          setSecret(created.secret);
          void tokens.reload();
        }}
      >
        <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
          <Input />
        </Form.Item>
        <Form.Item name="role" label={t('staff.role')} rules={[{ required: true }]}>
          <Select options={roles.map((r) => ({ value: r.name, label: r.name }))} />
        </Form.Item>
        <Form.Item name="expires_in_days" label="expires in days">
          <InputNumber min={1} max={3650} />
        </Form.Item>
      </CreateModal>
    </Page>
  );
}
