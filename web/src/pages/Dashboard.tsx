// 数据看板: the operations dashboard. Every number comes from one API call
// (GET /api/v1/reports/dashboard) plus the RFM and Pareto reports; the page only draws.
import { Alert, Card, Col, DatePicker, Row, Segmented, Select, Space, Statistic, Typography } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { useMemo, useState } from 'react';
import { api, unwrap, type Schemas } from '../api/client';
import { ChartCard, type ChartOption } from '../components/Chart';
import { formatMoney, formatNumber, formatPercent, tenantToday } from '../format';
import { useLocale } from '../i18n';
import { useApi } from '../useApi';

type Report = Schemas['DashboardReport'];

const CHANNEL_NAMES: Record<string, [string, string]> = {
  wecom: ['企业微信', 'WeCom'],
  mini_program: ['小程序', 'Mini program'],
  official_account: ['公众号', 'Official account'],
  app: ['App', 'App'],
  website: ['官网', 'Website'],
  server: ['服务端', 'Server'],
  other: ['其他', 'Other'],
  none: ['无来源', 'No source'],
  mini_shop: ['小程序商城', 'Mini shop'],
  tmall: ['天猫', 'Tmall'],
  taobao: ['淘宝', 'Taobao'],
  jd: ['京东', 'JD'],
  douyin_shop: ['抖音小店', 'Douyin shop'],
  pinduoduo: ['拼多多', 'Pinduoduo'],
  xiaohongshu: ['小红书', 'Xiaohongshu'],
  offline: ['线下门店', 'Offline'],
};

export function channelName(locale: string, channel: string): string {
  const names = CHANNEL_NAMES[channel];
  return names ? names[locale === 'zh' ? 0 : 1] : channel;
}

export function stageName(locale: string, stage: string): string {
  const names = STAGE_NAMES[stage];
  return names ? names[locale === 'zh' ? 0 : 1] : stage;
}

const STAGES = ['acquired', 'activated', 'retained', 'revenue', 'referral'] as const;
const STAGE_NAMES: Record<string, [string, string]> = {
  acquired: ['获客', 'Acquired'],
  activated: ['激活', 'Activated'],
  retained: ['留存', 'Retained'],
  revenue: ['变现', 'Revenue'],
  referral: ['推荐', 'Referral'],
  lapsed: ['流失', 'Lapsed'],
};

export function DashboardPage() {
  const { t, locale } = useLocale();
  // days are the tenant's: "today" is today in its time zone, wherever the browser is
  const today = dayjs(tenantToday());
  const [range, setRange] = useState<[Dayjs, Dayjs]>([today.subtract(89, 'day'), today]);
  const [unit, setUnit] = useState<number | undefined>();
  const [period, setPeriod] = useState<'week' | 'month'>('week');
  const [channel, setChannel] = useState<string | undefined>();

  const units = useApi(() => unwrap(api.GET('/api/v1/units', { params: { query: { limit: 200 } } })), []);
  const report = useApi(
    () =>
      unwrap(
        api.GET('/api/v1/reports/dashboard', {
          params: {
            query: {
              from: range[0].format('YYYY-MM-DD'),
              to: range[1].format('YYYY-MM-DD'),
              unit_id: unit,
              period,
              channel,
            },
          },
        }),
      ),
    [range[0].valueOf(), range[1].valueOf(), unit, period, channel],
  );
  const rfm = useApi(() => unwrap(api.GET('/api/v1/rfm', { params: { query: { unit_id: unit } } })), [unit]);
  const pareto = useApi(() => unwrap(api.GET('/api/v1/reports/pareto', { params: { query: { unit_id: unit } } })), [unit]);

  const d = report.data;
  const totals = useMemo(() => {
    const added = d?.growth.reduce((s, g) => s + g.added, 0) ?? 0;
    const lost = d?.growth.reduce((s, g) => s + g.lost, 0) ?? 0;
    return { added, lost, net: added - lost };
  }, [d]);

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space wrap style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('nav.dashboard')}
        </Typography.Title>
        <Space wrap>
          <DatePicker.RangePicker
            aria-label={t('common.dateRange')}
            allowClear={false}
            value={range}
            onChange={(v) => v && v[0] && v[1] && setRange([v[0], v[1]])}
            presets={[
              { label: '7d', value: [today.subtract(6, 'day'), today] },
              { label: '30d', value: [today.subtract(29, 'day'), today] },
              { label: '90d', value: [today.subtract(89, 'day'), today] },
              { label: '365d', value: [today.subtract(364, 'day'), today] },
            ]}
          />
          <Select
            aria-label={t('common.unit')}
            style={{ minWidth: 180 }}
            allowClear
            placeholder={t('common.unit')}
            value={unit}
            onChange={setUnit}
            options={(units.data?.items ?? []).map((u) => ({ value: u.id, label: u.name }))}
          />
        </Space>
      </Space>
      {report.error && <Alert type="error" showIcon title={report.error} />}
      <Row gutter={[16, 16]}>
        <Kpi title={t('dash.added')} value={formatNumber(locale, totals.added)} testId="kpi-added" />
        <Kpi title={t('dash.lost')} value={formatNumber(locale, totals.lost)} />
        <Kpi title={t('dash.net')} value={formatNumber(locale, totals.net)} />
        <Kpi title={t('dash.gmv')} value={formatMoney(locale, d?.sales.gmv, undefined, 0)} testId="kpi-gmv" />
        <Kpi title={t('dash.privateShare')} value={formatPercent(locale, d?.sales.private_share)} />
        <Kpi title={t('dash.aov')} value={formatMoney(locale, d?.sales.average_order_value)} />
      </Row>
      <Row gutter={[16, 16]}>
        <Col xs={24} xl={16}>
          <GrowthChart report={d} />
        </Col>
        <Col xs={24} xl={8}>
          <FunnelChart report={d} />
        </Col>
        <Col xs={24}>
          <RetentionChart
            report={d}
            extra={
              <>
                <Select
                  size="small"
                  allowClear
                  aria-label={t('dash.retention')}
                  placeholder={t('common.all')}
                  style={{ minWidth: 120 }}
                  value={channel}
                  onChange={setChannel}
                  options={(d?.channels ?? []).map((c) => ({ value: c, label: channelName(locale, c) }))}
                />
                <Segmented
                  size="small"
                  value={period}
                  onChange={(v) => setPeriod(v as 'week' | 'month')}
                  options={[
                    { label: t('dash.weekly'), value: 'week' },
                    { label: t('dash.monthly'), value: 'month' },
                  ]}
                />
              </>
            }
          />
        </Col>
        <Col xs={24} xl={12}>
          <RepurchaseChart report={d} />
        </Col>
        <Col xs={24} xl={12}>
          <ChannelSalesChart report={d} />
        </Col>
        {d?.acquisition && (
          <Col xs={24}>
            <AcquisitionCard section={d.acquisition} />
          </Col>
        )}
        <Col xs={24} xl={16}>
          <RfmChart classes={rfm.data?.classes ?? []} />
        </Col>
        <Col xs={24} xl={8}>
          <Card title={t('dash.pareto')} size="small" data-testid="pareto" style={{ height: '100%' }}>
            {pareto.data && pareto.data.buyers > 0 ? (
              <Space orientation="vertical">
                <Statistic title={t('dash.paretoText', { share: formatPercent(locale, pareto.data.key_customer_share) })} value={formatNumber(locale, pareto.data.key_customers)} />
                <Typography.Text type="secondary">
                  {t('dash.buyers')}: {formatNumber(locale, pareto.data.buyers)} · GMV {formatMoney(locale, pareto.data.gmv)}
                </Typography.Text>
              </Space>
            ) : (
              <Typography.Text type="secondary">{t('common.empty')}</Typography.Text>
            )}
          </Card>
        </Col>
      </Row>
    </Space>
  );
}

/** What channel codes brought: friends added and the friendships lost (by the
 * customer or the member), apart from the customers who lapsed above. */
function AcquisitionCard({ section }: { section: NonNullable<Report['acquisition']> }) {
  const { t, locale } = useLocale();
  const n = (v: number) => formatNumber(locale, v);
  return (
    <Card title={t('dash.acquisition')} size="small" data-testid="dash-acquisition">
      <Space wrap size={32}>
        <Statistic title={t('acquisition.scans')} value={n(section.scans)} />
        <Statistic title={t('acquisition.adds')} value={n(section.adds)} />
        <Statistic title={t('dash.relationsLostByCustomer')} value={n(section.relations_lost_by_customer)} />
        <Statistic title={t('dash.relationsLostByMember')} value={n(section.relations_lost_by_member)} />
        <Statistic title={t('acquisition.netAdds')} value={n(section.net_adds)} />
        <Statistic title={t('acquisition.firstOrders')} value={n(section.first_orders)} />
        <Statistic title={t('acquisition.gmv')} value={formatMoney(locale, section.first_order_gmv)} />
      </Space>
      {section.top_codes.length > 0 && (
        <Typography.Paragraph type="secondary" style={{ marginTop: 12, marginBottom: 0 }}>
          {t('dash.topCodes')}: {section.top_codes.map((c) => `${c.name} ${n(c.adds)}`).join(' · ')}
        </Typography.Paragraph>
      )}
    </Card>
  );
}

function Kpi({ title, value, testId }: { title: string; value: string; testId?: string }) {
  return (
    <Col xs={12} md={8} xl={4}>
      <Card size="small" data-testid={testId}>
        <Statistic title={title} value={value} />
      </Card>
    </Col>
  );
}

function GrowthChart({ report }: { report?: Report }) {
  const { t, locale } = useLocale();
  const rows = report?.growth ?? [];
  const option = useMemo<ChartOption>(() => {
    const dates = [...new Set(rows.map((r) => r.date))].sort();
    const channels = [...new Set(rows.map((r) => r.channel))].sort();
    const net = dates.map((date) => rows.filter((r) => r.date === date).reduce((s, r) => s + r.net, 0));
    const lost = dates.map((date) => -rows.filter((r) => r.date === date).reduce((s, r) => s + r.lost, 0));
    return {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 40, right: 16, top: 36, bottom: 24 },
      xAxis: { type: 'category', data: dates },
      yAxis: { type: 'value' },
      series: [
        ...channels.map((c) => ({
          name: channelName(locale, c),
          type: 'bar',
          stack: 'added',
          data: dates.map((date) => rows.find((r) => r.date === date && r.channel === c)?.added ?? 0),
        })),
        { name: t('dash.lost'), type: 'bar', stack: 'added', data: lost, itemStyle: { color: '#ff7875' } },
        { name: t('dash.net'), type: 'line', data: net, smooth: true },
      ],
    };
  }, [rows, locale, t]);
  return (
    <ChartCard
      title={t('dash.growth')}
      testId="chart-growth"
      option={option}
      rows={rows}
      rowKey={(r) => r.date + r.channel}
      empty={rows.length === 0}
      columns={[
        { title: t('audit.time'), dataIndex: 'date' },
        { title: t('sources.kind'), dataIndex: 'channel', render: (c: string) => channelName(locale, c) },
        { title: t('dash.added'), dataIndex: 'added', align: 'right' },
        { title: t('dash.lost'), dataIndex: 'lost', align: 'right' },
        { title: t('dash.net'), dataIndex: 'net', align: 'right' },
      ]}
    />
  );
}

function FunnelChart({ report }: { report?: Report }) {
  const { t, locale } = useLocale();
  const funnel = report?.funnel;
  const rows = funnel ? [...STAGES, 'lapsed' as const].map((s) => ({ stage: s, customers: funnel[s] })) : [];
  const name = (s: string) => STAGE_NAMES[s][locale === 'zh' ? 0 : 1];
  const option = useMemo<ChartOption>(
    () => ({
      tooltip: { trigger: 'item' },
      series: [
        {
          type: 'funnel',
          sort: 'none',
          left: 10,
          right: 10,
          top: 10,
          bottom: 10,
          label: { position: 'inside', formatter: '{b}: {c}', color: '#fff' },
          data: STAGES.map((s) => ({ name: name(s), value: funnel?.[s] ?? 0 })),
        },
      ],
    }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [funnel, locale],
  );
  return (
    <ChartCard
      title={t('dash.funnel')}
      testId="chart-funnel"
      option={option}
      rows={rows}
      rowKey={(r) => r.stage}
      empty={!funnel || funnel.acquired === 0}
      columns={[
        { title: t('customers.stage'), dataIndex: 'stage', render: (s: string) => name(s) },
        { title: t('common.count'), dataIndex: 'customers', align: 'right' },
      ]}
    />
  );
}

function RetentionChart({ report, extra }: { report?: Report; extra: React.ReactNode }) {
  const { t, locale } = useLocale();
  const cohorts = report?.retention ?? [];
  const width = Math.min(12, Math.max(0, ...cohorts.map((c) => c.active.length)));
  const option = useMemo<ChartOption>(() => {
    const data: [number, number, number][] = [];
    cohorts.forEach((c, y) =>
      c.active.slice(0, width).forEach((n, x) => data.push([x, y, c.customers ? Math.round((n / c.customers) * 1000) / 10 : 0])),
    );
    return {
      tooltip: { formatter: (p: { value: [number, number, number] }) => `${cohorts[p.value[1]].start} +${p.value[0]}: ${p.value[2]}%` },
      grid: { left: 90, right: 16, top: 8, bottom: 48 },
      xAxis: { type: 'category', data: Array.from({ length: width }, (_, k) => `+${k}`) },
      yAxis: { type: 'category', data: cohorts.map((c) => `${c.start} (${c.customers})`), inverse: true },
      visualMap: { min: 0, max: 100, calculable: true, orient: 'horizontal', left: 'center', bottom: 0, itemHeight: 120 },
      series: [{ type: 'heatmap', data, label: { show: cohorts.length <= 16, formatter: (p: { value: number[] }) => `${p.value[2]}` } }],
    };
  }, [cohorts, width]);
  const rows = cohorts.map((c) => ({ ...c, key: c.start }));
  return (
    <ChartCard
      title={t('dash.retention')}
      testId="chart-retention"
      option={option}
      height={Math.max(260, cohorts.length * 26 + 80)}
      rows={rows}
      rowKey={(r) => r.key}
      empty={cohorts.length === 0}
      extra={extra}
      columns={[
        { title: t('dash.cohort'), dataIndex: 'start', fixed: 'left' },
        { title: t('dash.customers'), dataIndex: 'customers', align: 'right' },
        ...Array.from({ length: width }, (_, k) => ({
          title: `+${k}`,
          key: `k${k}`,
          align: 'right' as const,
          render: (_: unknown, c: (typeof rows)[number]) =>
            k < c.active.length ? formatPercent(locale, c.customers ? c.active[k] / c.customers : 0) : '',
        })),
      ]}
    />
  );
}

function RepurchaseChart({ report }: { report?: Report }) {
  const { t, locale } = useLocale();
  const r = report?.repurchase;
  const rows = r
    ? [
        { group: t('dash.private'), ...r.private_domain },
        { group: t('dash.others'), ...r.others },
      ]
    : [];
  const option = useMemo<ChartOption>(
    () => ({
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 48, right: 48, top: 36, bottom: 24 },
      xAxis: { type: 'category', data: rows.map((x) => x.group) },
      yAxis: [
        { type: 'value', name: '%', max: 100 },
        { type: 'value', name: t('dash.frequency') },
      ],
      series: [
        { name: t('dash.repurchaseRate'), type: 'bar', data: rows.map((x) => Math.round(x.repurchase_rate * 1000) / 10) },
        { name: t('dash.frequency'), type: 'bar', yAxisIndex: 1, data: rows.map((x) => Math.round(x.frequency * 100) / 100) },
      ],
    }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [r, locale],
  );
  return (
    <ChartCard
      title={t('dash.repurchase')}
      testId="chart-repurchase"
      option={option}
      rows={rows}
      rowKey={(x) => x.group}
      empty={!r || r.private_domain.buyers + r.others.buyers === 0}
      columns={[
        { title: '', dataIndex: 'group' },
        { title: t('dash.customers'), dataIndex: 'customers', align: 'right' },
        { title: t('dash.buyers'), dataIndex: 'buyers', align: 'right' },
        { title: t('dash.repurchaseRate'), dataIndex: 'repurchase_rate', align: 'right', render: (v: number) => formatPercent(locale, v) },
        { title: t('dash.frequency'), dataIndex: 'frequency', align: 'right', render: (v: number) => formatNumber(locale, v, 2) },
        { title: 'GMV', dataIndex: 'gmv', align: 'right', render: (v: number) => formatMoney(locale, v) },
      ]}
    />
  );
}

function ChannelSalesChart({ report }: { report?: Report }) {
  const { t, locale } = useLocale();
  const rows = report?.sales.by_channel ?? [];
  const option = useMemo<ChartOption>(
    () => ({
      tooltip: { trigger: 'item' },
      legend: { bottom: 0, type: 'scroll' },
      series: [
        {
          type: 'pie',
          radius: ['40%', '70%'],
          data: rows.map((r) => ({ name: channelName(locale, r.channel), value: r.gmv })),
        },
      ],
    }),
    [rows, locale],
  );
  return (
    <ChartCard
      title={`${t('dash.privateShare')}: ${formatPercent(locale, report?.sales.private_share)}`}
      testId="chart-sales"
      option={option}
      rows={rows}
      rowKey={(r) => r.channel}
      empty={rows.length === 0}
      columns={[
        { title: t('sources.kind'), dataIndex: 'channel', render: (c: string) => channelName(locale, c) },
        { title: t('dash.private'), dataIndex: 'private_domain', render: (p: boolean) => (p ? '✓' : '') },
        { title: 'GMV', dataIndex: 'gmv', align: 'right', render: (v: number) => formatMoney(locale, v) },
      ]}
    />
  );
}

function RfmChart({ classes }: { classes: Schemas['RfmClassFigures'][] }) {
  const { t, locale } = useLocale();
  const option = useMemo<ChartOption>(
    () => ({
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 56, right: 56, top: 36, bottom: 48 },
      xAxis: { type: 'category', data: classes.map((c) => (locale === 'zh' ? c.name : c.class)), axisLabel: { rotate: 20 } },
      yAxis: [{ type: 'value', name: t('common.count') }, { type: 'value', name: 'GMV' }],
      series: [
        { name: t('common.count'), type: 'bar', data: classes.map((c) => c.customers) },
        { name: 'GMV', type: 'line', yAxisIndex: 1, data: classes.map((c) => c.gmv) },
      ],
    }),
    [classes, locale, t],
  );
  return (
    <ChartCard
      title={t('dash.rfm')}
      testId="chart-rfm"
      option={option}
      rows={classes}
      rowKey={(c) => c.class}
      empty={classes.every((c) => c.customers === 0)}
      columns={[
        { title: t('customers.rfm'), dataIndex: 'name', render: (n: string, c) => (locale === 'zh' ? n : c.class) },
        { title: t('common.count'), dataIndex: 'customers', align: 'right' },
        { title: 'GMV', dataIndex: 'gmv', align: 'right', render: (v: number) => formatMoney(locale, v) },
        { title: t('dash.aov'), dataIndex: 'average_order_value', align: 'right', render: (v: number) => formatMoney(locale, v) },
      ]}
    />
  );
}
