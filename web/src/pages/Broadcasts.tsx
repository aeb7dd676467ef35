// Mass sends (群发): the sends, newest first, with their state, who was left out and why,
// and a progress bar of recipients sent; the list is read again every two seconds while
// a send is on its way. Those who may send make one in a wizard: the audience (everyone,
// a saved segment, tags (any or all), customers by id, or a CSV list read into ids) with a live count of who would receive it and
// why the rest would not, the frequency cap, the text, now or at a time, and a last
// look before it goes, on the sandbox or on WeCom (one task per member, who confirms it
// in WeCom). A send waiting for its time or on its way can be cancelled; its name opens
// its progress (BroadcastDetail: member tasks, reminders, recipients).
import { PlusOutlined, UploadOutlined } from '@ant-design/icons';
import { Alert, Button, DatePicker, Descriptions, Input, Modal, Popconfirm, Progress, Radio, Select, Space, Steps, Table, Tag, Typography, Upload } from 'antd';
import type { Dayjs } from 'dayjs';
import { useEffect, useMemo, useRef, useState } from 'react';
import { api, errorMessage, unwrap, type Schemas } from '../api/client';
import { formatNumber, formatTime } from '../format';
import { useLocale, type MessageKey } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';
import { BroadcastDetail, stateKey } from './BroadcastDetail';

type Broadcast = Schemas['Broadcast'];
type Audience = Schemas['BroadcastAudience'];
type Cap = Schemas['FrequencyCap'];
type Preview = Schemas['BroadcastPreview'];
type Channel = Schemas['BroadcastChannel'];

const POLL_MS = 2000;
const TEXT_MAX_BYTES = 4000;
const CAPS: Cap[] = ['days_in_month', 'seven_a_week', 'one_a_day'];
const STATE_COLORS: Record<string, string> = { scheduled: 'blue', planning: 'processing', sending: 'processing', sent: 'success', cancelled: 'default' };

const live = (b: Broadcast) => b.state === 'planning' || b.state === 'sending' || (b.state === 'scheduled' && Date.parse(b.send_at) <= Date.now());

export function BroadcastsPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const [error, setError] = useState<string | null>(null);
  const [wizard, setWizard] = useState(false);
  const [open, setOpen] = useState<number | null>(null);
  const sends = useApi(() => unwrap(api.GET('/api/v1/broadcasts', { params: { query: { limit: 100 } } })), []);
  const items = sends.data?.items ?? [];
  const following = items.some(live);

  useEffect(() => {
    if (!following) return;
    const timer = window.setInterval(() => void sends.reload(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [following, sends]);

  async function cancel(b: Broadcast) {
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/broadcasts/{id}/cancel', { params: { path: { id: b.id } } }));
      await sends.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  const n = (v: number) => formatNumber(locale, v);
  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('nav.broadcasts')}
        </Typography.Title>
        {can('broadcasts.write') && (
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setWizard(true)} data-testid="new-broadcast">
            {t('broadcasts.new')}
          </Button>
        )}
      </Space>
      {(error || sends.error) && <Alert type="error" showIcon title={error ?? sends.error} role="alert" />}
      <Table<Broadcast>
        data-testid="broadcasts"
        rowKey="id"
        loading={sends.loading && !sends.data}
        dataSource={items}
        pagination={false}
        scroll={{ x: 900 }}
        columns={[
          {
            title: t('common.name'),
            dataIndex: 'name',
            render: (name: string, b) => (
              <Button type="link" style={{ padding: 0 }} onClick={() => setOpen(b.id)} data-testid={`open-broadcast-${b.id}`}>
                {name}
              </Button>
            ),
          },
          { title: t('broadcasts.channel'), dataIndex: 'channel', width: 120, render: (c: string) => t(`broadcasts.channel.${c}` as MessageKey) },
          {
            title: t('broadcasts.state'),
            dataIndex: 'state',
            width: 100,
            render: (s: string, b) => (
              <Tag color={STATE_COLORS[s]} data-testid={`broadcast-state-${b.id}`} data-state={s}>
                {t(stateKey(b))}
              </Tag>
            ),
          },
          { title: t('broadcasts.sendAt'), dataIndex: 'send_at', width: 160, render: (v: string) => formatTime(locale, v) },
          {
            title: t('broadcasts.progress'),
            key: 'progress',
            width: 220,
            render: (_, b) =>
              b.recipients === null || b.recipients === undefined ? (
                '—'
              ) : (
                <div data-testid={`broadcast-progress-${b.id}`}>
                  <Progress percent={b.recipients ? Math.floor((100 * b.sent) / b.recipients) : 100} size="small" />
                  <Typography.Text type="secondary">{t('broadcasts.sentOf', { sent: n(b.sent), of: n(b.recipients) })}</Typography.Text>
                </div>
              ),
          },
          { title: t('broadcasts.leftOut'), key: 'excluded', render: (_, b) => <Excluded excluded={b.excluded} /> },
          {
            title: t('common.actions'),
            key: 'actions',
            width: 96,
            render: (_, b) =>
              can('broadcasts.write') && (['scheduled', 'planning', 'sending'].includes(b.state) || (b.channel === 'wecom' && b.state === 'sent')) ? (
                <Popconfirm title={t('broadcasts.confirmCancel', { name: b.name })} onConfirm={() => cancel(b)}>
                  <Button size="small" danger data-testid={`cancel-broadcast-${b.id}`}>
                    {t('common.cancel')}
                  </Button>
                </Popconfirm>
              ) : null,
          },
        ]}
      />
      {following && <Typography.Text type="secondary">{t('jobs.live')}</Typography.Text>}
      {open !== null && items.find((b) => b.id === open) && (
        <BroadcastDetail send={items.find((b) => b.id === open)!} onClose={() => setOpen(null)} onChanged={sends.reload} />
      )}
      {wizard && (
        <BroadcastWizard
          onClose={() => setWizard(false)}
          onMade={async () => {
            setWizard(false);
            await sends.reload();
          }}
        />
      )}
    </Space>
  );
}

function Excluded({ excluded }: { excluded: Record<string, number> }) {
  const { t, locale } = useLocale();
  const reasons = Object.entries(excluded).filter(([, v]) => v > 0);
  if (reasons.length === 0) return <>—</>;
  return (
    <Space size={[4, 4]} wrap>
      {reasons.map(([why, v]) => (
        <Tag key={why}>
          {t(`broadcasts.why.${why}` as MessageKey)} {formatNumber(locale, v)}
        </Tag>
      ))}
    </Space>
  );
}

type AudienceKind = 'everyone' | 'segment' | 'tags' | 'customers' | 'file';
type FromFile = Schemas['AudienceFromFile'];

/** Customer ids written one per line, or separated by commas or spaces. */
function idsOf(text: string): number[] {
  return text
    .split(/[\s,，]+/)
    .map((s) => Number(s))
    .filter((v) => Number.isInteger(v) && v > 0);
}

function BroadcastWizard({ onClose, onMade }: { onClose: () => void; onMade: () => Promise<void> }) {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const [step, setStep] = useState(0);
  const [kind, setKind] = useState<AudienceKind>('everyone');
  const [channel, setChannel] = useState<Channel>('sandbox');
  const [segment, setSegment] = useState<number | null>(null);
  const [listed, setListed] = useState('');
  const [tags, setTags] = useState<string[]>([]);
  const [allTags, setAllTags] = useState(false);
  const [fileName, setFileName] = useState<string | null>(null);
  const [fromFile, setFromFile] = useState<FromFile | null>(null);
  const [cap, setCap] = useState<Cap>('days_in_month');
  const [name, setName] = useState('');
  const [text, setText] = useState('');
  const [byTemplate, setByTemplate] = useState(false);
  const [templateId, setTemplateId] = useState<number | null>(null);
  const [contentIds, setContentIds] = useState<number[]>([]);
  const [previewCustomer, setPreviewCustomer] = useState('');
  const [rendered, setRendered] = useState<string | null>(null);
  const [later, setLater] = useState(false);
  const [sendAt, setSendAt] = useState<Dayjs | null>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const segments = useApi(() => unwrap(api.GET('/api/v1/segments')), []);
  const tagCatalog = useApi(() => (can('tags.read') ? unwrap(api.GET('/api/v1/tags')) : Promise.resolve(null)), []);
  const templates = useApi(() => (can('content.read') ? unwrap(api.GET('/api/v1/message-templates', { params: { query: { limit: 100 } } })) : Promise.resolve(null)), []);
  const template = templates.data?.items.find((x) => x.id === templateId) ?? null;
  // what a send may carry beside its text: the library's items but texts (and, on WeCom, articles)
  const library = useApi(() => (can('content.read') ? unwrap(api.GET('/api/v1/content', { params: { query: { limit: 200 } } })) : Promise.resolve(null)), []);
  const attachable = (library.data?.items ?? []).filter((i) => i.kind !== 'text' && !(channel === 'wecom' && i.kind === 'article'));

  // a template's rendering for one customer (on WeCom: as a member task renders it)
  useEffect(() => {
    const customer = Number(previewCustomer);
    if (!byTemplate || !templateId || !Number.isInteger(customer) || customer <= 0) {
      setRendered(null);
      return;
    }
    let current = true;
    const timer = window.setTimeout(async () => {
      try {
        const answer = await unwrap(
          api.POST('/api/v1/message-templates/{id}/preview', { params: { path: { id: templateId } }, body: { customer_id: customer, shared: channel === 'wecom' } }),
        );
        if (current) setRendered(answer.text);
      } catch (e) {
        if (current) setRendered(errorMessage(e));
      }
    }, 300);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [byTemplate, templateId, previewCustomer, channel]);

  const audience: Audience | null = useMemo(() => {
    if (kind === 'everyone') return 'everyone';
    if (kind === 'segment') return segment ? { condition: { segment } } : null;
    if (kind === 'tags') {
      if (tags.length === 0) return null;
      return { condition: tags.length === 1 ? { tag: tags[0] } : { [allTags ? 'and' : 'or']: tags.map((tag) => ({ tag })) } };
    }
    if (kind === 'file') return fromFile && fromFile.customers.length > 0 ? { customers: fromFile.customers } : null;
    const ids = idsOf(listed);
    return ids.length > 0 ? { customers: ids } : null;
  }, [kind, segment, tags, allTags, fromFile, listed]);

  // a file of customers: read by siyu into a list, each row's customer found once
  // the file goes as it is (siyu says when it is not UTF-8); only the last one chosen
  // is shown
  const reading = useRef(0);
  async function readFile(file: File) {
    const turn = ++reading.current;
    setFileName(file.name);
    setFromFile(null);
    setError(null);
    try {
      const answer = await unwrap(
        api.POST('/api/v1/broadcasts/audience-file', {
          body: file as never,
          bodySerializer: (b: unknown) => b as Blob,
          headers: { 'content-type': 'text/csv' },
        }),
      );
      if (turn === reading.current) setFromFile(answer);
    } catch (e) {
      if (turn === reading.current) setError(errorMessage(e));
    }
  }

  // the live count: who would receive it now, and why the rest would not
  useEffect(() => {
    if (!audience) {
      setPreview(null);
      return;
    }
    let current = true;
    const timer = window.setTimeout(async () => {
      try {
        const answer = await unwrap(api.POST('/api/v1/broadcasts/preview', { body: { audience, channel, frequency_cap: cap } }));
        if (current) {
          setPreview(answer);
          setError(null);
        }
      } catch (e) {
        if (current) setError(errorMessage(e));
      }
    }, 300);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [audience, cap, channel]);

  const bytes = new TextEncoder().encode(text.trim()).length;
  const hasContent = byTemplate ? templateId !== null : text.trim() !== '' && bytes <= TEXT_MAX_BYTES;
  const canNext = [audience !== null && (preview?.recipients ?? 0) > 0, name.trim() !== '' && hasContent, !later || sendAt !== null][step] ?? true;

  async function send() {
    if (!audience) return;
    setBusy(true);
    setError(null);
    try {
      await unwrap(
        api.POST('/api/v1/broadcasts', {
          body: { name: name.trim(), channel, audience, ...(byTemplate && templateId ? { template_id: templateId } : { text }), content_ids: contentIds.filter((id) => attachable.some((i) => i.id === id)), frequency_cap: cap, send_at: later && sendAt ? sendAt.toISOString() : undefined },
        }),
      );
      await onMade();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  }

  const n = (v: number) => formatNumber(locale, v);
  const audienceText =
    kind === 'everyone'
      ? t('broadcasts.everyone')
      : kind === 'segment'
        ? segments.data?.find((s) => s.id === segment)?.name ?? ''
        : kind === 'tags'
          ? tags.join(allTags ? ' + ' : ' / ')
          : kind === 'file'
            ? t('broadcasts.fromFile', { file: fileName ?? '', n: n(fromFile?.customers.length ?? 0) })
            : t('broadcasts.listed', { n: n(idsOf(listed).length) });
  return (
    <Modal
      open
      width={720}
      title={t('broadcasts.new')}
      onCancel={onClose}
      footer={
        <Space>
          {step > 0 && <Button onClick={() => setStep(step - 1)}>{t('broadcasts.back')}</Button>}
          {step < 3 ? (
            <Button type="primary" disabled={!canNext} onClick={() => setStep(step + 1)} data-testid="broadcast-next">
              {t('broadcasts.next')}
            </Button>
          ) : (
            <Button type="primary" loading={busy} onClick={send} data-testid="broadcast-send">
              {later ? t('broadcasts.schedule') : t('broadcasts.sendNow')}
            </Button>
          )}
        </Space>
      }
    >
      <Steps
        size="small"
        current={step}
        style={{ marginBottom: 16 }}
        items={[{ title: t('broadcasts.audience') }, { title: t('broadcasts.content') }, { title: t('broadcasts.when') }, { title: t('broadcasts.confirm') }]}
      />
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 12 }} />}
      {step === 0 && (
        <Space orientation="vertical" style={{ width: '100%' }}>
          <Radio.Group value={channel} onChange={(e) => setChannel(e.target.value as Channel)} aria-label={t('broadcasts.channel')} data-testid="broadcast-channel">
            <Radio value="sandbox">{t('broadcasts.channel.sandbox')}</Radio>
            <Radio value="wecom">{t('broadcasts.channel.wecom')}</Radio>
          </Radio.Group>
          {channel === 'wecom' && <Typography.Text type="secondary">{t('broadcasts.wecomNote')}</Typography.Text>}
          <Radio.Group value={kind} onChange={(e) => setKind(e.target.value as AudienceKind)} aria-label={t('broadcasts.audience')}>
            <Radio value="everyone">{t('broadcasts.everyone')}</Radio>
            <Radio value="segment">{t('broadcasts.bySegment')}</Radio>
            <Radio value="tags">{t('broadcasts.byTags')}</Radio>
            <Radio value="customers">{t('broadcasts.byList')}</Radio>
            <Radio value="file">{t('broadcasts.byFile')}</Radio>
          </Radio.Group>
          {kind === 'segment' && (
            <Select
              aria-label={t('broadcasts.segment')}
              placeholder={t('broadcasts.segment')}
              value={segment}
              onChange={setSegment}
              style={{ width: '100%' }}
              options={(segments.data ?? []).map((s) => ({ value: s.id, label: s.name }))}
            />
          )}
          {kind === 'tags' && (
            <Space wrap>
              <Select
                mode="multiple"
                aria-label={t('broadcasts.tags')}
                placeholder={t('broadcasts.tags')}
                value={tags}
                onChange={setTags}
                style={{ minWidth: 360 }}
                data-testid="broadcast-tags"
                options={(tagCatalog.data ?? []).map((tag) => ({ value: tag.name, label: tag.name }))}
              />
              <Radio.Group value={allTags} onChange={(e) => setAllTags(e.target.value as boolean)} aria-label={t('broadcasts.tagsMatch')}>
                <Radio value={false}>{t('broadcasts.anyTag')}</Radio>
                <Radio value={true}>{t('broadcasts.allTags')}</Radio>
              </Radio.Group>
            </Space>
          )}
          {kind === 'file' && (
            <Space orientation="vertical" style={{ width: '100%' }} data-testid="broadcast-file">
              <Upload accept=".csv,text/csv" maxCount={1} showUploadList={false} beforeUpload={(f) => (void readFile(f), false)}>
                <Button icon={<UploadOutlined />}>{fileName ?? t('broadcasts.chooseFile')}</Button>
              </Upload>
              <Typography.Text type="secondary">{t('broadcasts.fileHelp')}</Typography.Text>
              {fromFile && (
                <Alert
                  type={fromFile.unmatched_rows > 0 ? 'warning' : 'success'}
                  showIcon
                  data-testid="broadcast-file-result"
                  title={t('broadcasts.fileRead', { rows: n(fromFile.rows), customers: n(fromFile.customers.length), repeated: n(fromFile.repeated_rows), unmatched: n(fromFile.unmatched_rows) })}
                  description={
                    fromFile.unmatched.length > 0 ? (
                      <ul style={{ margin: 0, paddingLeft: 18 }}>
                        {fromFile.unmatched.slice(0, 10).map((r) => (
                          <li key={r.line}>{t('broadcasts.fileLine', { line: r.line, reason: r.reason })}</li>
                        ))}
                      </ul>
                    ) : undefined
                  }
                />
              )}
            </Space>
          )}
          {kind === 'customers' && (
            <Input.TextArea aria-label={t('broadcasts.customerIds')} placeholder={t('broadcasts.customerIds')} rows={4} value={listed} onChange={(e) => setListed(e.target.value)} />
          )}
          <Space>
            <Typography.Text id="broadcast-cap-label">{t('broadcasts.cap')}</Typography.Text>
            <Select<Cap>
              aria-labelledby="broadcast-cap-label"
              value={cap}
              onChange={setCap}
              style={{ width: 240 }}
              options={CAPS.map((c) => ({ value: c, label: t(`broadcasts.cap.${c}` as MessageKey) }))}
            />
          </Space>
          {preview && (
            <Alert
              type={preview.recipients > 0 ? 'info' : 'warning'}
              showIcon
              data-testid="broadcast-count"
              title={t('broadcasts.willReceive', { n: n(preview.recipients) })}
              description={<Excluded excluded={preview.excluded} />}
            />
          )}
        </Space>
      )}
      {step === 1 && (
        <Space orientation="vertical" style={{ width: '100%' }}>
          <Input aria-label={t('common.name')} placeholder={t('common.name')} maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
          {templates.data && (
            <Radio.Group value={byTemplate} onChange={(e) => setByTemplate(e.target.value as boolean)} aria-label={t('broadcasts.contentKind')} data-testid="broadcast-content-kind">
              <Radio value={false}>{t('broadcasts.byText')}</Radio>
              <Radio value={true}>{t('broadcasts.byTemplate')}</Radio>
            </Radio.Group>
          )}
          {byTemplate ? (
            <>
              <Select<number>
                aria-label={t('broadcasts.template')}
                placeholder={t('broadcasts.template')}
                value={templateId ?? undefined}
                onChange={setTemplateId}
                style={{ width: '100%' }}
                options={(templates.data?.items ?? []).map((x) => ({ value: x.id, label: x.name }))}
              />
              {template && <Typography.Paragraph style={{ whiteSpace: 'pre-wrap', margin: 0 }}>{template.body}</Typography.Paragraph>}
              {channel === 'wecom' && template?.per_customer && <Typography.Text type="secondary">{t('broadcasts.previewShared')}</Typography.Text>}
              <Input aria-label={t('broadcasts.previewFor')} placeholder={t('broadcasts.previewFor')} value={previewCustomer} onChange={(e) => setPreviewCustomer(e.target.value)} style={{ width: 240 }} />
              {rendered && <Alert type="info" title={rendered} data-testid="broadcast-rendered" />}
            </>
          ) : (
            <>
              <Input.TextArea aria-label={t('broadcasts.text')} placeholder={t('broadcasts.text')} rows={6} value={text} onChange={(e) => setText(e.target.value)} />
              <Typography.Text type={bytes > TEXT_MAX_BYTES ? 'danger' : 'secondary'}>{t('broadcasts.bytes', { n: n(bytes), max: n(TEXT_MAX_BYTES) })}</Typography.Text>
            </>
          )}
          {attachable.length > 0 && (
            <Select<number[]>
              mode="multiple"
              aria-label={t('broadcasts.attachments')}
              placeholder={t('broadcasts.attachments')}
              value={contentIds}
              onChange={(ids) => setContentIds(ids.slice(0, 9))}
              style={{ width: '100%' }}
              data-testid="broadcast-attachments"
              optionFilterProp="label"
              options={attachable.map((i) => ({ value: i.id, label: `${t(`content.kind.${i.kind}` as MessageKey)} · ${i.title}` }))}
            />
          )}
        </Space>
      )}
      {step === 2 && (
        <Space orientation="vertical" style={{ width: '100%' }}>
          <Radio.Group value={later} onChange={(e) => setLater(e.target.value as boolean)} aria-label={t('broadcasts.when')}>
            <Radio value={false}>{t('broadcasts.now')}</Radio>
            <Radio value={true}>{t('broadcasts.later')}</Radio>
          </Radio.Group>
          {later && <DatePicker showTime aria-label={t('broadcasts.sendAt')} value={sendAt} onChange={setSendAt} />}
        </Space>
      )}
      {step === 3 && (
        <Descriptions column={1} bordered size="small" data-testid="broadcast-summary">
          <Descriptions.Item label={t('common.name')}>{name}</Descriptions.Item>
          <Descriptions.Item label={t('broadcasts.channel')}>{t(`broadcasts.channel.${channel}` as MessageKey)}</Descriptions.Item>
          <Descriptions.Item label={t('broadcasts.audience')}>{audienceText}</Descriptions.Item>
          <Descriptions.Item label={t('broadcasts.recipients')}>{n(preview?.recipients ?? 0)}</Descriptions.Item>
          <Descriptions.Item label={t('broadcasts.cap')}>{t(`broadcasts.cap.${cap}` as MessageKey)}</Descriptions.Item>
          <Descriptions.Item label={t('broadcasts.text')}>
            <Typography.Paragraph style={{ whiteSpace: 'pre-wrap', margin: 0 }}>{byTemplate ? `${template?.name ?? ''}：${template?.body ?? ''}` : text.trim()}</Typography.Paragraph>
          </Descriptions.Item>
          {contentIds.length > 0 && (
            <Descriptions.Item label={t('broadcasts.attachments')}>
              {attachable.filter((i) => contentIds.includes(i.id)).map((i) => i.title).join('、')}
            </Descriptions.Item>
          )}
          <Descriptions.Item label={t('broadcasts.sendAt')}>{later && sendAt ? formatTime(locale, sendAt.toISOString()) : t('broadcasts.now')}</Descriptions.Item>
        </Descriptions>
      )}
    </Modal>
  );
}
