// Group codes (群活码) on the Acquisition page: each code's chats, the ones its WeCom
// join way seats people in now, and the joins over the page's date range; those who may
// run campaigns make, change and delete them. A code is a pool of a WeCom channel's
// customer group chats in the order they fill (picked from the chats siyu has synced,
// or typed as chat_ids by a role that cannot list them), and whether WeCom opens new
// rooms, named how, when all are full.
import { ArrowDownOutlined, ArrowUpOutlined, DeleteOutlined, PlusOutlined } from '@ant-design/icons';
import { Alert, Button, Card, Divider, Form, Input, InputNumber, Select, Space, Switch, Table, Typography } from 'antd';
import type { Dayjs } from 'dayjs';
import { useMemo, useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { FormModal } from '../components/FormModal';
import { formatNumber } from '../format';
import { actionsColumn } from '../components/RowActions';
import { useLocale } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';
import type { Lookups } from './acquisitionLookups';
import { STATE_PATTERN } from './AcquisitionCodeForm';

type GroupCode = Schemas['GroupCode'];
type Values = {
  name: string;
  state: string;
  connector_id?: number;
  account_id?: number | null;
  chat_ids?: (string | undefined)[];
  auto_create_room: boolean;
  room_base_name?: string;
  room_base_id?: number | null;
};
const FIELDS = ['name', 'state', 'connector_id', 'account_id', 'auto_create_room', 'room_base_name', 'room_base_id'];

export function GroupCodesCard({ range, lookups }: { range: [Dayjs, Dayjs]; lookups: Lookups }) {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const editable = can('campaigns.write');
  const codes = useApi(() => unwrap(api.GET('/api/v1/group-codes', { params: { query: { limit: 200 } } })), []);
  const report = useApi(
    () =>
      unwrap(
        api.GET('/api/v1/group-codes/report', {
          params: { query: { from: range[0].format('YYYY-MM-DD'), to: range[1].format('YYYY-MM-DD') } },
        }),
      ),
    [range[0].valueOf(), range[1].valueOf()],
  );
  const [editing, setEditing] = useState<GroupCode | 'new' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const figures = useMemo(() => new Map((report.data?.rows ?? []).map((r) => [r.code_id, r])), [report.data]);
  const n = (v: number) => formatNumber(locale, v);

  async function remove(c: GroupCode) {
    setError(null);
    try {
      await unwrap(api.DELETE('/api/v1/group-codes/{id}', { params: { path: { id: c.id } } }));
      await codes.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  return (
    <Card
      title={t('groupCodes.title')}
      extra={
        editable && (
          <Button icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="new-group-code">
            {t('groupCodes.new')}
          </Button>
        )
      }
    >
      {(error || codes.error || report.error) && <Alert type="error" showIcon title={error ?? codes.error ?? report.error} role="alert" style={{ marginBottom: 12 }} />}
      <Table<GroupCode>
        data-testid="acquisition-group-codes"
        size="small"
        loading={codes.loading}
        rowKey="id"
        dataSource={codes.data?.items ?? []}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: 'state', dataIndex: 'state', render: (s: string) => <Typography.Text code>{s}</Typography.Text> },
          {
            title: t('groupCodes.seating'),
            key: 'way',
            render: (_, c) =>
              c.join_way?.error ? (
                <Typography.Text type="danger">{c.join_way.error}</Typography.Text>
              ) : (
                (c.join_way?.chat_ids ?? []).join(', ') || '—'
              ),
          },
          { title: t('groupCodes.chats'), key: 'pool', align: 'right', render: (_, c) => n(c.chat_ids.length) },
          { title: t('groupCodes.joins'), key: 'joins', align: 'right', render: (_, c) => n(figures.get(c.id)?.joins ?? 0) },
          { title: t('groupCodes.left'), key: 'left', align: 'right', render: (_, c) => n(figures.get(c.id)?.left ?? 0) },
          {
            title: 'QR',
            key: 'qr',
            render: (_, c) =>
              c.join_way?.qr_code_url ? (
                <a href={c.join_way.qr_code_url} target="_blank" rel="noreferrer">
                  QR
                </a>
              ) : (
                '—'
              ),
          },
          ...actionsColumn<GroupCode>(editable, t('common.actions'), {
            kind: 'group-code',
            confirm: (c) => t('groupCodes.confirmDelete', { name: c.name }),
            onEdit: (c) => setEditing(c),
            onDelete: (c) => remove(c),
          }),
        ]}
      />
      <GroupCodeModal
        open={editing !== null}
        code={editing === 'new' ? null : editing}
        lookups={lookups}
        onClose={() => setEditing(null)}
        onSaved={() => void codes.reload()}
      />
    </Card>
  );
}

function GroupCodeModal({ open, code, lookups, onClose, onSaved }: { open: boolean; code: GroupCode | null; lookups: Lookups; onClose: () => void; onSaved: () => void }) {
  const { t } = useLocale();
  const [form] = Form.useForm<Values>();
  const connector = Form.useWatch('connector_id', form);
  const listed = lookups.connectorsListed;
  const chats = useApi(
    async () => (connector && listed ? await unwrap(api.GET('/api/v1/connectors/{id}/group-chats', { params: { path: { id: connector } } })) : null),
    [connector, listed],
  );
  const live = (chats.data ?? []).filter((c) => !c.dismissed_at);
  const chatOptions = [
    ...live.map((c) => ({ value: c.chat_id, label: t('groupCodes.chatOption', { name: c.name || c.chat_id, n: c.members }) })),
    ...(code?.chat_ids ?? []).filter((id) => !live.some((c) => c.chat_id === id)).map((id) => ({ value: id, label: id })),
  ];
  const connectors = lookups.connectors.data ?? [];
  const connectorOptions = [
    ...connectors.map((c) => ({ value: c.id, label: c.name })),
    ...(code && !connectors.some((c) => c.id === code.connector_id) ? [{ value: code.connector_id, label: `#${code.connector_id}` }] : []),
  ];
  const values: Partial<Values> = code
    ? {
        name: code.name,
        state: code.state,
        connector_id: code.connector_id,
        account_id: code.account_id ?? null,
        chat_ids: code.chat_ids,
        auto_create_room: code.auto_create_room,
        room_base_name: code.room_base_name,
        room_base_id: code.room_base_id,
      }
    : { connector_id: connectors.length === 1 ? connectors[0].id : undefined, account_id: null, chat_ids: [undefined], auto_create_room: true, room_base_id: 1 };

  async function submit(v: Values) {
    const chatIds = (v.chat_ids ?? []).map((id) => id?.trim() ?? '').filter((id) => id !== '');
    const baseName = v.room_base_name?.trim() ?? '';
    if (!code) {
      const body: Schemas['NewGroupCode'] = {
        name: v.name,
        state: v.state.trim(),
        connector_id: v.connector_id as number,
        account_id: v.account_id ?? null,
        chat_ids: chatIds,
        auto_create_room: v.auto_create_room,
        room_base_name: baseName || null,
        room_base_id: v.room_base_id ?? null,
      };
      await unwrap(api.POST('/api/v1/group-codes', { body }));
    } else {
      // only what changed (the state and the channel stay as made)
      const body: Schemas['GroupCodeChange'] = {};
      if (v.name !== code.name) body.name = v.name;
      if ((v.account_id ?? null) !== (code.account_id ?? null)) body.account_id = v.account_id ?? null;
      if (JSON.stringify(chatIds) !== JSON.stringify(code.chat_ids)) body.chat_ids = chatIds;
      if (v.auto_create_room !== code.auto_create_room) body.auto_create_room = v.auto_create_room;
      if (baseName && baseName !== code.room_base_name) body.room_base_name = baseName;
      if (v.room_base_id != null && v.room_base_id !== code.room_base_id) body.room_base_id = v.room_base_id;
      if (Object.keys(body).length > 0) await unwrap(api.PATCH('/api/v1/group-codes/{id}', { params: { path: { id: code.id } }, body }));
    }
    onSaved();
  }

  return (
    <FormModal<Values>
      open={open}
      title={code ? t('groupCodes.edit') : t('groupCodes.new')}
      form={form}
      values={values}
      onClose={onClose}
      submit={submit}
      fieldOf={(f) => (FIELDS.includes(f) ? [f] : null)}
      width={640}
      name="group-code-form"
    >
      <Form.Item name="name" label={t('common.name')} rules={[{ required: true, whitespace: true }]}>
        <Input maxLength={100} />
      </Form.Item>
      <Form.Item
        name="state"
        label={t('acquisition.state')}
        extra={code ? t('groupCodes.fixed') : t('acquisition.stateHelp')}
        rules={[{ required: true, message: t('acquisition.stateInvalid') }, { pattern: STATE_PATTERN, message: t('acquisition.stateInvalid') }]}
      >
        <Input maxLength={30} autoComplete="off" disabled={!!code} />
      </Form.Item>
      <Form.Item name="connector_id" label={t('acquisition.connector')} rules={[{ required: true }]}>
        <Select options={connectorOptions} disabled={!!code} />
      </Form.Item>
      <Form.Item name="account_id" label={t('acquisition.account')}>
        <Select allowClear showSearch optionFilterProp="label" options={(lookups.accounts.data ?? []).map((a) => ({ value: a.id, label: a.name }))} />
      </Form.Item>
      <Divider titlePlacement="start" plain>
        {t('groupCodes.pool')}
      </Divider>
      <Typography.Paragraph type="secondary">{listed ? t('groupCodes.poolHelp') : t('groupCodes.chatIds')}</Typography.Paragraph>
      {listed && connector && chats.data && live.length === 0 && <Alert type="info" showIcon title={t('groupCodes.noChats')} style={{ marginBottom: 12 }} />}
      {chats.error && <Alert type="error" showIcon title={chats.error} role="alert" style={{ marginBottom: 12 }} />}
      <Form.List name="chat_ids">
        {(fields, { add, remove, move }) => (
          <>
            {fields.map((field, i) => {
              const n = i + 1;
              return (
                <Space key={field.key} align="start" data-testid="pool-chat">
                  <Form.Item name={field.name} rules={[{ required: true, whitespace: true, message: t('groupCodes.pickChat') }]}>
                    {listed ? (
                      <Select aria-label={t('groupCodes.chat', { n })} placeholder={t('groupCodes.chat', { n })} showSearch optionFilterProp="label" options={chatOptions} style={{ width: 360 }} />
                    ) : (
                      <Input aria-label={t('groupCodes.chat', { n })} placeholder="chat_id" maxLength={64} style={{ width: 360 }} />
                    )}
                  </Form.Item>
                  <Button aria-label={t('groupCodes.moveUp', { n })} icon={<ArrowUpOutlined />} disabled={i === 0} onClick={() => move(i, i - 1)} />
                  <Button aria-label={t('groupCodes.moveDown', { n })} icon={<ArrowDownOutlined />} disabled={i === fields.length - 1} onClick={() => move(i, i + 1)} />
                  <Button aria-label={t('groupCodes.removeChat', { n })} icon={<DeleteOutlined />} disabled={fields.length === 1} onClick={() => remove(field.name)} />
                </Space>
              );
            })}
            <Form.Item>
              <Button icon={<PlusOutlined />} onClick={() => add()} data-testid="add-chat">
                {t('groupCodes.addChat')}
              </Button>
            </Form.Item>
          </>
        )}
      </Form.List>
      <Form.Item name="auto_create_room" label={t('groupCodes.autoCreateRoom')} valuePropName="checked">
        <Switch />
      </Form.Item>
      <Space wrap size={16}>
        <Form.Item name="room_base_name" label={t('groupCodes.roomBaseName')} extra={code ? undefined : t('groupCodes.roomBaseNameHelp')}>
          <Input maxLength={30} style={{ width: 260 }} />
        </Form.Item>
        <Form.Item name="room_base_id" label={t('groupCodes.roomBaseId')}>
          <InputNumber min={0} max={1_000_000} precision={0} style={{ width: 160 }} />
        </Form.Item>
      </Space>
    </FormModal>
  );
}
