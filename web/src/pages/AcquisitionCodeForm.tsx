// The dialog that makes or changes a channel code (渠道活码): its name and `state`, the
// account it is posted on, its WeCom channel, the members it routes adds to (each
// primary, backup or after-hours, with a weight and a daily capacity), how it routes
// them and in which working hours, the tags and welcome it gives, and whether customers
// are added without the member confirming. A change sends only what changed.
import { DeleteOutlined, PlusOutlined } from '@ant-design/icons';
import { Button, Checkbox, Divider, Form, Input, InputNumber, Segmented, Select, Space, Switch, Typography } from 'antd';
import { api, unwrap, type Schemas } from '../api/client';
import { FormModal, fieldPath } from '../components/FormModal';
import { useLocale, type MessageKey } from '../i18n';
import { useApi } from '../useApi';
import type { Lookups } from './acquisitionLookups';

type ChannelCode = Schemas['ChannelCode'];
type NewChannelCode = Schemas['NewChannelCode'];
type Role = Schemas['CodeMemberRole'];
type Mode = Schemas['RoutingMode'];
type MemberRow = { staff_id?: number; role: Role; weight?: number | null; daily_capacity?: number | null };
type Values = {
  name: string;
  state: string;
  account_id?: number | null;
  connector_id?: number | null;
  unit_id?: number | null;
  members?: MemberRow[];
  mode: Mode;
  hours: boolean;
  start?: string;
  end?: string;
  days?: number[];
  tag_ids?: number[];
  welcome?: string;
  skip_verify: boolean;
  landing_first: boolean;
};

/** A `state`: 1 to 30 letters, digits, `-` and `_` (the API checks it too). */
export const STATE_PATTERN = /^[A-Za-z0-9_-]{1,30}$/;
const ROLES: Role[] = ['primary', 'backup', 'after_hours'];
const MODES: Mode[] = ['round_robin', 'weighted'];
const DAYS = [1, 2, 3, 4, 5, 6, 7];
const PLAIN = ['name', 'state', 'account_id', 'connector_id', 'unit_id', 'tag_ids', 'welcome', 'skip_verify', 'landing_first'];

function valuesOf(code: ChannelCode | null): Values {
  const hours = code?.routing.working_hours;
  return {
    name: code?.name ?? '',
    state: code?.state ?? '',
    account_id: code?.account_id ?? null,
    connector_id: code?.connector_id ?? null,
    unit_id: code?.unit_id ?? null,
    members: (code?.members ?? []).map((m) => ({ staff_id: m.staff_id, role: m.role ?? 'primary', weight: m.weight ?? 1, daily_capacity: m.daily_capacity ?? null })),
    mode: code?.routing.mode ?? 'round_robin',
    hours: !!hours,
    start: hours?.start ?? '09:00',
    end: hours?.end ?? '18:00',
    days: hours?.days ?? [1, 2, 3, 4, 5],
    tag_ids: code?.tag_ids ?? [],
    welcome: code?.welcome ?? '',
    skip_verify: code?.skip_verify ?? true,
    landing_first: code?.landing_first ?? false,
  };
}

/** The code the form describes, in the API's shape. */
function specOf(v: Values): Required<NewChannelCode> {
  return {
    name: v.name.trim(),
    state: v.state.trim(),
    account_id: v.account_id ?? null,
    connector_id: v.connector_id ?? null,
    unit_id: v.unit_id ?? null,
    members: (v.members ?? []).map((m) => ({ staff_id: m.staff_id as number, role: m.role, weight: m.weight ?? 1, daily_capacity: m.daily_capacity ?? null })),
    routing: {
      mode: v.mode,
      working_hours: v.hours ? { start: v.start ?? '', end: v.end ?? '', days: [...(v.days ?? [])].sort((a, b) => a - b) } : null,
    },
    tag_ids: [...(v.tag_ids ?? [])].sort((a, b) => a - b),
    welcome: v.welcome?.trim() ? v.welcome : null,
    skip_verify: v.skip_verify,
    landing_first: v.landing_first,
  };
}

/** Where the API's field names show in the form (`members[0].weight`, `routing.working_hours.end`). */
function fieldOf(field: string): (string | number)[] | null {
  if (PLAIN.includes(field)) return [field];
  if (/^members\[\d+\]\.(staff_id|role|weight|daily_capacity)$/.test(field)) return fieldPath(field);
  const hours = /^routing\.working_hours\.(start|end|days)$/.exec(field);
  if (hours) return [hours[1]];
  if (field === 'routing.mode') return ['mode'];
  return null;
}

export function CodeFormModal({
  open,
  code,
  lookups,
  onClose,
  onSaved,
}: {
  open: boolean;
  /** The code to change; none: a new one. */
  code: ChannelCode | null;
  lookups: Lookups;
  onClose: () => void;
  onSaved: () => void;
}) {
  const { t } = useLocale();
  const [form] = Form.useForm<Values>();
  const mode = Form.useWatch('mode', form);
  const hours = Form.useWatch('hours', form);
  const connector = Form.useWatch('connector_id', form);
  // with a WeCom channel, only its members can take adds
  const corp = useApi(
    async () => (connector && lookups.connectorsListed ? await unwrap(api.GET('/api/v1/connectors/{id}/members', { params: { path: { id: connector } } })) : null),
    [connector, lookups.connectorsListed],
  );
  const current = (code?.members ?? []).map((m) => m.staff_id);
  const staffOptions = corp.data
    ? [
        ...corp.data.filter((m) => m.left_at == null).map((m) => ({ value: m.staff_id, label: m.name })),
        ...current.filter((id) => !corp.data?.some((m) => m.staff_id === id)).map((id) => ({ value: id, label: lookups.staffName(id) })),
      ]
    : lookups.staffOptions(current);
  const connectorOptions = [
    ...(lookups.connectors.data ?? []).map((c) => ({ value: c.id, label: c.name })),
    ...(code?.connector_id != null && !lookups.connectors.data?.some((c) => c.id === code.connector_id) ? [{ value: code.connector_id, label: `#${code.connector_id}` }] : []),
  ];

  async function submit(v: Values) {
    const spec = specOf(v);
    if (!code) {
      await unwrap(api.POST('/api/v1/channel-codes', { body: spec }));
    } else {
      // only what changed: the code as it was, put through the same form
      const was = specOf(valuesOf(code));
      const body: Record<string, unknown> = {};
      for (const key of Object.keys(spec) as (keyof typeof spec)[]) {
        if (JSON.stringify(spec[key]) !== JSON.stringify(was[key])) body[key] = spec[key];
      }
      if (Object.keys(body).length > 0) {
        await unwrap(api.PATCH('/api/v1/channel-codes/{id}', { params: { path: { id: code.id } }, body: body as Schemas['ChannelCodeChange'] }));
      }
    }
    onSaved();
  }

  return (
    <FormModal<Values>
      open={open}
      title={code ? t('acquisition.editCode') : t('acquisition.newCode')}
      form={form}
      values={valuesOf(code)}
      onClose={onClose}
      submit={submit}
      fieldOf={fieldOf}
      width={760}
      name="code-form"
    >
      <Form.Item name="name" label={t('common.name')} rules={[{ required: true, whitespace: true }]}>
        <Input maxLength={100} />
      </Form.Item>
      <Form.Item
        name="state"
        label={t('acquisition.state')}
        extra={t('acquisition.stateHelp')}
        rules={[{ required: true, message: t('acquisition.stateInvalid') }, { pattern: STATE_PATTERN, message: t('acquisition.stateInvalid') }]}
      >
        <Input maxLength={30} autoComplete="off" />
      </Form.Item>
      <Space wrap size={16} style={{ width: '100%' }}>
        <Form.Item name="account_id" label={t('acquisition.account')}>
          <Select allowClear showSearch optionFilterProp="label" options={(lookups.accounts.data ?? []).map((a) => ({ value: a.id, label: a.name }))} style={{ width: 260 }} />
        </Form.Item>
        <Form.Item name="unit_id" label={t('acquisition.codeUnit')} hidden={!lookups.unitsListed}>
          <Select allowClear showSearch optionFilterProp="label" options={(lookups.units.data ?? []).map((u) => ({ value: u.id, label: u.name }))} style={{ width: 260 }} />
        </Form.Item>
      </Space>
      <Form.Item name="connector_id" label={t('acquisition.connector')} extra={t('acquisition.connectorHelp')} hidden={!lookups.connectorsListed && code?.connector_id == null}>
        <Select allowClear options={connectorOptions} disabled={!lookups.connectorsListed} />
      </Form.Item>
      <Divider titlePlacement="start" plain>
        {t('acquisition.members')}
      </Divider>
      <Typography.Paragraph type="secondary">{lookups.staffListed || corp.data ? t('acquisition.membersHelp') : t('acquisition.membersUnlisted')}</Typography.Paragraph>
      <Form.Item name="mode" label={t('acquisition.routing')}>
        <Segmented<Mode> options={MODES.map((m) => ({ value: m, label: t(`acquisition.routing.${m}` as MessageKey) }))} />
      </Form.Item>
      <Form.List name="members">
        {(fields, { add, remove }) => (
          <>
            {fields.map((field, i) => {
              const n = i + 1;
              return (
                <Space key={field.key} align="start" wrap data-testid="code-member">
                  <Form.Item name={[field.name, 'staff_id']} rules={[{ required: true, message: t('acquisition.pickMember') }]}>
                    <Select aria-label={t('acquisition.member', { n })} placeholder={t('acquisition.member', { n })} showSearch optionFilterProp="label" options={staffOptions} style={{ width: 200 }} />
                  </Form.Item>
                  <Form.Item name={[field.name, 'role']}>
                    <Select aria-label={t('acquisition.memberRole', { n })} options={ROLES.map((r) => ({ value: r, label: t(`acquisition.role.${r}` as MessageKey) }))} style={{ width: 130 }} />
                  </Form.Item>
                  <Form.Item name={[field.name, 'weight']} hidden={mode !== 'weighted'}>
                    <InputNumber aria-label={t('acquisition.memberWeight', { n })} prefix="×" min={1} max={100} precision={0} style={{ width: 100 }} />
                  </Form.Item>
                  <Form.Item name={[field.name, 'daily_capacity']}>
                    <InputNumber aria-label={t('acquisition.memberCapacity', { n })} placeholder={t('acquisition.unlimited')} min={1} precision={0} style={{ width: 130 }} />
                  </Form.Item>
                  <Button aria-label={t('acquisition.removeMember', { n })} icon={<DeleteOutlined />} onClick={() => remove(field.name)} />
                </Space>
              );
            })}
            <Form.Item>
              <Button icon={<PlusOutlined />} onClick={() => add({ role: 'primary', weight: 1, daily_capacity: null })} data-testid="add-member">
                {t('acquisition.addMember')}
              </Button>
            </Form.Item>
          </>
        )}
      </Form.List>
      <Form.Item name="hours" label={t('acquisition.workingHours')} valuePropName="checked">
        <Switch />
      </Form.Item>
      <Space wrap size={16} style={{ display: hours ? undefined : 'none' }}>
        <Form.Item name="start" label={t('acquisition.hoursStart')} hidden={!hours} rules={[{ required: !!hours }]}>
          <Input type="time" style={{ width: 140 }} />
        </Form.Item>
        <Form.Item name="end" label={t('acquisition.hoursEnd')} hidden={!hours} rules={[{ required: !!hours }]}>
          <Input type="time" style={{ width: 140 }} />
        </Form.Item>
      </Space>
      <Form.Item name="days" label={t('acquisition.days')} hidden={!hours} rules={[{ required: !!hours, type: 'array', min: 1 }]}>
        <Checkbox.Group options={DAYS.map((d) => ({ value: d, label: t(`acquisition.day.${d}` as MessageKey) }))} />
      </Form.Item>
      <Divider />
      <Form.Item name="tag_ids" label={t('acquisition.tags')} hidden={!lookups.tagsListed && (code?.tag_ids.length ?? 0) === 0}>
        <Select mode="multiple" allowClear optionFilterProp="label" options={tagOptions(lookups, code?.tag_ids ?? [])} />
      </Form.Item>
      <Form.Item name="welcome" label={t('acquisition.welcome')} extra={t('acquisition.welcomeHelp')}>
        <Input.TextArea autoSize={{ minRows: 2, maxRows: 6 }} />
      </Form.Item>
      <Space wrap size={32}>
        <Form.Item name="skip_verify" label={t('acquisition.skipVerify')} valuePropName="checked">
          <Switch />
        </Form.Item>
        <Form.Item name="landing_first" label={t('acquisition.landingFirst')} valuePropName="checked">
          <Switch />
        </Form.Item>
      </Space>
    </FormModal>
  );
}

/** The tags to pick from, and those already on the code even when they cannot be listed. */
function tagOptions(lookups: Lookups, keep: number[]) {
  const tags = lookups.tags.data ?? [];
  return [
    ...tags.map((tag) => ({ value: tag.id, label: tag.name })),
    ...keep.filter((id) => !tags.some((tag) => tag.id === id)).map((id) => ({ value: id, label: `#${id}` })),
  ];
}
