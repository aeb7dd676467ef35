// Channel accounts (渠道账号) on the Acquisition page: the brand's accounts on the
// platforms it acquires from (a Douyin account, a Tmall store), that codes and links
// name so acquisition is reported per platform and per account. Those who may run
// campaigns add, change and delete them (the API refuses to delete one a code names).
import { PlusOutlined } from '@ant-design/icons';
import { Alert, Button, Card, Form, Input, Select, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { FormModal } from '../components/FormModal';
import { actionsColumn } from '../components/RowActions';
import { useLocale, type MessageKey } from '../i18n';
import { useSession } from '../session';
import type { ChannelAccount, Lookups } from './acquisitionLookups';

type Platform = Schemas['Platform'];
type DomainClass = Schemas['DomainClass'];
type Values = {
  platform: Platform;
  name: string;
  handle?: string;
  domain_class?: DomainClass | null;
  unit_id?: number | null;
  owner_staff_id?: number | null;
};

export const PLATFORMS: Platform[] = [
  'douyin', 'kuaishou', 'bilibili', 'weibo', 'xiaohongshu', 'taobao', 'tmall', 'jd', 'pinduoduo', 'wechat_channels',
  'official_account', 'mini_program', 'wecom', 'website', 'app', 'ads', 'kol', 'offline_store', 'other',
];
const CLASSES: DomainClass[] = ['private', 'public', 'hybrid'];
const FIELDS = ['platform', 'name', 'handle', 'domain_class', 'unit_id', 'owner_staff_id'];

export function AccountsCard({ lookups }: { lookups: Lookups }) {
  const { t } = useLocale();
  const { can } = useSession();
  const editable = can('campaigns.write');
  const { accounts } = lookups;
  // the account in the dialog: `new` for a new one
  const [editing, setEditing] = useState<ChannelAccount | 'new' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [form] = Form.useForm<Values>();
  const current = editing === 'new' ? null : editing;
  const platformName = (p: Platform) => t(`accounts.platform.${p}` as MessageKey);

  async function submit(v: Values) {
    const handle = v.handle?.trim() ?? '';
    if (!current) {
      const body: Schemas['NewChannelAccount'] = {
        platform: v.platform,
        name: v.name,
        handle: handle || null,
        domain_class: v.domain_class ?? null,
        unit_id: v.unit_id ?? null,
        owner_staff_id: v.owner_staff_id ?? null,
      };
      await unwrap(api.POST('/api/v1/channel-accounts', { body }));
    } else {
      // only what changed (fields left out stay; `null` clears the unit or owner)
      const body: Schemas['ChannelAccountChange'] = {};
      if (v.platform !== current.platform) body.platform = v.platform;
      if (v.name !== current.name) body.name = v.name;
      if (handle !== current.handle) body.handle = handle;
      if (v.domain_class && v.domain_class !== current.domain_class) body.domain_class = v.domain_class;
      if ((v.unit_id ?? null) !== (current.unit_id ?? null)) body.unit_id = v.unit_id ?? null;
      if ((v.owner_staff_id ?? null) !== (current.owner_staff_id ?? null)) body.owner_staff_id = v.owner_staff_id ?? null;
      if (Object.keys(body).length > 0) await unwrap(api.PATCH('/api/v1/channel-accounts/{id}', { params: { path: { id: current.id } }, body }));
    }
    await accounts.reload();
  }

  async function remove(a: ChannelAccount) {
    setError(null);
    try {
      await unwrap(api.DELETE('/api/v1/channel-accounts/{id}', { params: { path: { id: a.id } } }));
      await accounts.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  const values: Partial<Values> = current
    ? {
        platform: current.platform,
        name: current.name,
        handle: current.handle,
        domain_class: current.domain_class,
        unit_id: current.unit_id ?? null,
        owner_staff_id: current.owner_staff_id ?? null,
      }
    : { unit_id: null, owner_staff_id: null };

  return (
    <Card
      title={t('accounts.title')}
      extra={
        editable && (
          <Button icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="new-account">
            {t('accounts.new')}
          </Button>
        )
      }
    >
      {(error || accounts.error) && <Alert type="error" showIcon title={error ?? accounts.error} role="alert" style={{ marginBottom: 12 }} />}
      <Table<ChannelAccount>
        data-testid="acquisition-accounts"
        size="small"
        loading={accounts.loading}
        rowKey="id"
        dataSource={accounts.data ?? []}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('accounts.platform'), dataIndex: 'platform', render: platformName },
          { title: t('accounts.handle'), dataIndex: 'handle', render: (h: string) => (h ? <Typography.Text code>{h}</Typography.Text> : '—') },
          { title: t('accounts.domainClass'), dataIndex: 'domain_class', render: (c: DomainClass) => <Tag>{t(`accounts.domain.${c}` as MessageKey)}</Tag> },
          { title: t('common.unit'), dataIndex: 'unit_id', render: (id: number | null) => lookups.unitName(id) },
          { title: t('accounts.owner'), dataIndex: 'owner_staff_id', render: (id: number | null) => lookups.staffName(id) },
          ...actionsColumn<ChannelAccount>(editable, t('common.actions'), {
            kind: 'account',
            confirm: (a) => t('accounts.confirmDelete', { name: a.name }),
            onEdit: (a) => setEditing(a),
            onDelete: (a) => remove(a),
          }),
        ]}
      />
      <FormModal<Values>
        open={editing !== null}
        title={current ? t('accounts.edit') : t('accounts.new')}
        form={form}
        values={values}
        onClose={() => setEditing(null)}
        submit={submit}
        fieldOf={(f) => (FIELDS.includes(f) ? [f] : null)}
        name="account-form"
      >
        <Form.Item name="platform" label={t('accounts.platform')} rules={[{ required: true }]}>
          <Select showSearch optionFilterProp="label" options={PLATFORMS.map((p) => ({ value: p, label: platformName(p) }))} />
        </Form.Item>
        <Form.Item name="name" label={t('common.name')} rules={[{ required: true, whitespace: true }]}>
          <Input maxLength={100} />
        </Form.Item>
        <Form.Item name="handle" label={t('accounts.handle')}>
          <Input maxLength={100} />
        </Form.Item>
        <Form.Item name="domain_class" label={t('accounts.domainClass')} extra={current ? undefined : t('accounts.domainClassDefault')}>
          <Select allowClear={!current} options={CLASSES.map((c) => ({ value: c, label: t(`accounts.domain.${c}` as MessageKey) }))} />
        </Form.Item>
        {/* kept (hidden) for a role that cannot list units or staff, so an edit leaves them */}
        <Form.Item name="unit_id" label={t('common.unit')} hidden={!can('units.read')}>
          <Select allowClear showSearch optionFilterProp="label" options={(lookups.units.data ?? []).map((u) => ({ value: u.id, label: u.name }))} />
        </Form.Item>
        <Form.Item name="owner_staff_id" label={t('accounts.owner')} hidden={!lookups.staffListed}>
          <Select allowClear showSearch optionFilterProp="label" options={lookups.staffOptions(current?.owner_staff_id != null ? [current.owner_staff_id] : [])} />
        </Form.Item>
      </FormModal>
    </Card>
  );
}
