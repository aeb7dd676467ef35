// Acquisition (获客): what channel codes brought over a date range, grouped by code,
// account, platform, unit or member (scans, adds, losses, net adds, first orders and
// GMV), and the live codes with each member's adds today against their daily capacity,
// the state of their WeCom contact way and their QR image, with the printable sheet of
// the stores' codes; those who may run campaigns make, change and delete codes
// (`AcquisitionCodeForm.tsx`). Group codes (`AcquisitionGroupCodes.tsx`), tracked links
// (`AcquisitionLinks.tsx`) and the channel accounts (`AcquisitionAccounts.tsx`) follow.
import { PlusOutlined, PrinterOutlined } from '@ant-design/icons';
import { Alert, Button, Card, DatePicker, Segmented, Space, Statistic, Table, Tag, Typography } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { formatMoney, formatNumber, tenantToday } from '../format';
import { actionsColumn } from '../components/RowActions';
import { useLocale, type MessageKey } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';
import { AccountsCard } from './AcquisitionAccounts';
import { CodeFormModal } from './AcquisitionCodeForm';
import { GroupCodesCard } from './AcquisitionGroupCodes';
import { LinksCard } from './AcquisitionLinks';
import { useAcquisitionLookups } from './acquisitionLookups';

type ReportBy = Schemas['ReportBy'];
type ReportRow = Schemas['ReportRow'];
type ChannelCode = Schemas['ChannelCode'];

const GROUPS: ReportBy[] = ['code', 'account', 'platform', 'unit', 'member'];

export function AcquisitionPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const today = dayjs(tenantToday());
  const [range, setRange] = useState<[Dayjs, Dayjs]>([today.subtract(29, 'day'), today]);
  const [by, setBy] = useState<ReportBy>('code');

  const report = useApi(
    () =>
      unwrap(
        api.GET('/api/v1/acquisition/report', {
          params: { query: { from: range[0].format('YYYY-MM-DD'), to: range[1].format('YYYY-MM-DD'), by } },
        }),
      ),
    [range[0].valueOf(), range[1].valueOf(), by],
  );
  const codes = useApi(() => unwrap(api.GET('/api/v1/channel-codes', { params: { query: { limit: 200 } } })), []);
  // names of staff, units, accounts (ids when the caller may not read them), and what
  // the forms pick from
  const lookups = useAcquisitionLookups();
  const { staffName } = lookups;
  const editable = can('campaigns.write');
  // the code in the dialog: `new` for a new one
  const [editing, setEditing] = useState<ChannelCode | 'new' | null>(null);
  const [codeError, setCodeError] = useState<string | null>(null);

  async function removeCode(code: ChannelCode) {
    setCodeError(null);
    try {
      await unwrap(api.DELETE('/api/v1/channel-codes/{id}', { params: { path: { id: code.id } } }));
      await codes.reload();
    } catch (e) {
      setCodeError(errorMessage(e));
    }
  }

  const total = report.data?.total;
  const n = (v: number) => formatNumber(locale, v);

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space wrap style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('nav.acquisition')}
        </Typography.Title>
        <DatePicker.RangePicker
          aria-label={t('common.dateRange')}
          allowClear={false}
          value={range}
          onChange={(v) => v && v[0] && v[1] && setRange([v[0], v[1]])}
          presets={[
            { label: '7d', value: [today.subtract(6, 'day'), today] },
            { label: '30d', value: [today.subtract(29, 'day'), today] },
            { label: '365d', value: [today.subtract(364, 'day'), today] },
          ]}
        />
      </Space>
      {(report.error || codes.error) && <Alert type="error" showIcon title={report.error ?? codes.error} role="alert" />}
      <Space wrap size={32} data-testid="acquisition-totals">
        <Statistic title={t('acquisition.scans')} value={n(total?.scans ?? 0)} />
        <Statistic title={t('acquisition.adds')} value={n(total?.adds ?? 0)} />
        <Statistic title={t('acquisition.netAdds')} value={n(total?.net_adds ?? 0)} />
        <Statistic title={t('acquisition.firstOrders')} value={n(total?.first_orders ?? 0)} />
        <Statistic title={t('acquisition.gmv')} value={formatMoney(locale, total?.gmv ?? 0)} />
      </Space>
      <Card
        title={t('acquisition.report')}
        extra={
          <Segmented<ReportBy>
            aria-label={t('acquisition.by')}
            value={by}
            onChange={setBy}
            options={GROUPS.map((g) => ({ value: g, label: t(`acquisition.by.${g}` as MessageKey) }))}
          />
        }
      >
        <Table<ReportRow>
          data-testid="acquisition-report"
          size="small"
          loading={report.loading}
          rowKey={(r) => `${r.id ?? ''}:${r.name}`}
          dataSource={report.data?.rows ?? []}
          pagination={{ pageSize: 20, hideOnSinglePage: true }}
          columns={[
            { title: t('common.name'), dataIndex: 'name', render: (name: string, r) => (r.id === 0 && by === 'code' ? t('acquisition.unknownCode') : name) },
            { title: t('acquisition.scans'), dataIndex: 'scans', align: 'right', render: n },
            { title: t('acquisition.adds'), dataIndex: 'adds', align: 'right', render: n },
            { title: t('acquisition.deletedByCustomer'), dataIndex: 'deleted_by_customer', align: 'right', render: n },
            { title: t('acquisition.deletedByMember'), dataIndex: 'deleted_by_member', align: 'right', render: n },
            { title: t('acquisition.netAdds'), dataIndex: 'net_adds', align: 'right', render: n },
            { title: t('acquisition.firstOrders'), dataIndex: 'first_orders', align: 'right', render: n },
            { title: t('acquisition.gmv'), dataIndex: 'gmv', align: 'right', render: (v: number) => formatMoney(locale, v) },
          ]}
        />
      </Card>
      <Card
        title={t('acquisition.codes')}
        extra={
          <Space>
            <Button icon={<PrinterOutlined />} href="/api/v1/channel-codes/sheet" target="_blank" rel="noreferrer" data-testid="codes-sheet">
              {t('acquisition.sheet')}
            </Button>
            {editable && (
              <Button icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="new-code">
                {t('acquisition.newCode')}
              </Button>
            )}
          </Space>
        }
      >
        {codeError && <Alert type="error" showIcon title={codeError} role="alert" style={{ marginBottom: 12 }} />}
        <Table<ChannelCode>
          data-testid="acquisition-codes"
          size="small"
          loading={codes.loading}
          rowKey="id"
          dataSource={codes.data?.items ?? []}
          pagination={{ pageSize: 20, hideOnSinglePage: true }}
          columns={[
            { title: t('common.name'), dataIndex: 'name' },
            { title: 'state', dataIndex: 'state', render: (s: string) => <Typography.Text code>{s}</Typography.Text> },
            { title: t('acquisition.account'), dataIndex: 'account_id', render: (id: number | null) => lookups.accountName(id) },
            {
              title: t('acquisition.addsToday'),
              key: 'members',
              render: (_, code) => (
                <Space wrap size={4}>
                  {code.members.map((m) => {
                    const adds = code.adds_today.find((a) => a.staff_id === m.staff_id)?.adds ?? 0;
                    const full = m.daily_capacity != null && adds >= m.daily_capacity;
                    return (
                      <Tag key={m.staff_id} color={full ? 'red' : m.role === 'primary' ? 'blue' : 'default'}>
                        {staffName(m.staff_id)} {adds}/{m.daily_capacity ?? '∞'}
                      </Tag>
                    );
                  })}
                </Space>
              ),
            },
            {
              title: t('acquisition.contactWay'),
              key: 'way',
              render: (_, code) =>
                code.contact_way?.error ? (
                  <Typography.Text type="danger">{code.contact_way.error}</Typography.Text>
                ) : code.contact_way?.current_staff_id != null ? (
                  <span>
                    {staffName(code.contact_way.current_staff_id)}
                    {code.contact_way.current_route ? ` · ${t(`acquisition.route.${code.contact_way.current_route}` as MessageKey)}` : ''}
                  </span>
                ) : (
                  '—'
                ),
            },
            {
              title: 'QR',
              key: 'qr',
              render: (_, code) => (
                <Space size={8}>
                  <a href={`/api/v1/channel-codes/${code.id}/qr?format=png`} target="_blank" rel="noreferrer">PNG</a>
                  <a href={`/api/v1/channel-codes/${code.id}/qr?format=svg`} target="_blank" rel="noreferrer">SVG</a>
                </Space>
              ),
            },
            ...actionsColumn<ChannelCode>(editable, t('common.actions'), {
              kind: 'code',
              confirm: (code) => t('acquisition.confirmDeleteCode', { name: code.name }),
              onEdit: (code) => setEditing(code),
              onDelete: (code) => removeCode(code),
            }),
          ]}
        />
        <CodeFormModal
          open={editing !== null}
          code={editing === 'new' ? null : editing}
          lookups={lookups}
          onClose={() => setEditing(null)}
          onSaved={() => void codes.reload()}
        />
      </Card>
      <GroupCodesCard range={range} lookups={lookups} />
      <LinksCard range={range} lookups={lookups} />
      <AccountsCard lookups={lookups} />
    </Space>
  );
}
