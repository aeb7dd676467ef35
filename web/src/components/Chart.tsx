// A chart card: an ECharts chart with a switch to a table of the same numbers, and an
// empty state when there is nothing to show. Every dashboard chart is one of these.
import { BarChart, FunnelChart, HeatmapChart, LineChart, PieChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent, VisualMapComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import { Card, Empty, Segmented, Table, type TableColumnsType } from 'antd';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { useLocale } from '../i18n';

echarts.use([BarChart, FunnelChart, HeatmapChart, LineChart, PieChart, GridComponent, LegendComponent, TooltipComponent, VisualMapComponent, CanvasRenderer]);

export type ChartOption = echarts.EChartsCoreOption;

type Props<Row> = {
  title: ReactNode;
  option: ChartOption;
  columns: TableColumnsType<Row>;
  rows: Row[];
  rowKey: (row: Row) => string;
  empty: boolean;
  height?: number;
  testId?: string;
  extra?: ReactNode;
};

export function ChartCard<Row extends object>({ title, option, columns, rows, rowKey, empty, height = 300, testId, extra }: Props<Row>) {
  const { t } = useLocale();
  const [view, setView] = useState<'chart' | 'table'>('chart');
  return (
    <Card
      title={title}
      size="small"
      data-testid={testId}
      extra={
        <span style={{ display: 'inline-flex', gap: 8 }}>
          {extra}
          <Segmented
            size="small"
            value={view}
            onChange={(v) => setView(v as 'chart' | 'table')}
            options={[
              { label: t('common.chart'), value: 'chart' },
              { label: t('common.table'), value: 'table' },
            ]}
          />
        </span>
      }
    >
      {empty ? (
        <Empty description={t('common.empty')} style={{ height, display: 'grid', placeContent: 'center', margin: 0 }} />
      ) : view === 'chart' ? (
        <EChart option={option} height={height} />
      ) : (
        <Table<Row> size="small" columns={columns} dataSource={rows} rowKey={rowKey} pagination={rows.length > 10 ? { pageSize: 10 } : false} scroll={{ x: true }} />
      )}
    </Card>
  );
}

export function EChart({ option, height }: { option: ChartOption; height: number }) {
  const el = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts | null>(null);
  useEffect(() => {
    if (!el.current) return;
    chart.current = echarts.init(el.current);
    const resize = new ResizeObserver(() => chart.current?.resize());
    resize.observe(el.current);
    return () => {
      resize.disconnect();
      chart.current?.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    chart.current?.setOption(option, true);
  }, [option]);
  return <div ref={el} style={{ height, width: '100%' }} role="img" />;
}
