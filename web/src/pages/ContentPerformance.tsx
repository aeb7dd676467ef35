// How an item of the content library did in the mass sends that carried it: sends,
// recipients, sent and delivered (on WeCom once the member confirmed), clicks on the
// short links a link card led through, and what recipients ordered within a window
// after their message (7 days unless chosen).
import { Alert, Descriptions, Modal, Select, Space, Typography } from 'antd';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import { formatMoney, formatNumber } from '../format';
import { useLocale } from '../i18n';
import { useApi } from '../useApi';

const WINDOWS = [1, 7, 14, 30, 90];

export function ContentPerformance({ id, title, onClose }: { id: number; title: string; onClose: () => void }) {
  const { t, locale } = useLocale();
  const [days, setDays] = useState(7);
  const figures = useApi(
    () => unwrap(api.GET('/api/v1/content/{id}/performance', { params: { path: { id }, query: { window_days: days } } })),
    [id, days],
  );
  const f = figures.data;
  const n = (v: number | undefined) => formatNumber(locale, v);
  return (
    <Modal open title={t('content.performanceOf', { title })} onCancel={onClose} footer={null} width={560}>
      <Space orientation="vertical" style={{ width: '100%' }}>
        {figures.error && <Alert type="error" showIcon title={figures.error} role="alert" />}
        <Space>
          <Typography.Text id="performance-window-label">{t('content.window')}</Typography.Text>
          <Select<number>
            aria-labelledby="performance-window-label"
            value={days}
            onChange={setDays}
            style={{ width: 120 }}
            options={WINDOWS.map((d) => ({ value: d, label: t('content.days', { n: d }) }))}
          />
        </Space>
        <Descriptions bordered size="small" column={2} data-testid="content-performance">
          <Descriptions.Item label={t('content.sends')}>{n(f?.sends)}</Descriptions.Item>
          <Descriptions.Item label={t('content.recipients')}>{n(f?.recipients)}</Descriptions.Item>
          <Descriptions.Item label={t('content.sent')}>{n(f?.sent)}</Descriptions.Item>
          <Descriptions.Item label={t('content.delivered')}>
            <span data-testid="content-delivered">{n(f?.delivered)}</span>
          </Descriptions.Item>
          <Descriptions.Item label={t('content.trackedSends')}>{n(f?.tracked_sends)}</Descriptions.Item>
          <Descriptions.Item label={t('content.clicks')}>
            <span data-testid="content-clicks">{n(f?.clicks)}</span>
          </Descriptions.Item>
          <Descriptions.Item label={t('content.orders')}>
            <span data-testid="content-orders">{n(f?.orders)}</span>
          </Descriptions.Item>
          <Descriptions.Item label={t('content.orderingCustomers')}>{n(f?.ordering_customers)}</Descriptions.Item>
          <Descriptions.Item label={t('content.gmv')} span={2}>
            {f ? formatMoney(locale, f.gmv) : '—'}
          </Descriptions.Item>
        </Descriptions>
        <Typography.Text type="secondary">{t('content.performanceHelp')}</Typography.Text>
      </Space>
    </Modal>
  );
}
