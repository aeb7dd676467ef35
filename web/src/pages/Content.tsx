// The content library (素材库): what the brand sends, kept once — texts, images, link
// and mini-program cards, videos, files and articles — found by kind, category, source,
// tag or words of the title. Content staff add, change and delete; everyone who sends
// reads. A file is uploaded first (its id then named by the item), and images show as
// thumbnails served by siyu. Those who see sends see how each item did in them.
import { PlusOutlined, UploadOutlined } from '@ant-design/icons';
import { Alert, Button, Form, Input, Select, Space, Table, Tag, Typography } from 'antd';
import { useRef, useState } from 'react';
import { api, ApiError, errorMessage, unwrap, type Schemas } from '../api/client';
import { FormModal } from '../components/FormModal';
import { actionsColumn } from '../components/RowActions';
import { formatTime } from '../format';
import { useLocale, type MessageKey } from '../i18n';
import { useSession } from '../session';
import { useApi } from '../useApi';
import { ContentPerformance } from './ContentPerformance';

type Item = Schemas['ContentItem'];
type Kind = Schemas['ContentKind'];
type Category = Schemas['ContentCategory'];
type Source = Schemas['ContentSource'];
type Row = Item & { name: string };
type Values = {
  kind: Kind;
  title: string;
  category: Category;
  source: Source;
  tags: string[];
  text?: string;
  file_id?: number;
  url?: string;
  description?: string;
  image_file_id?: number;
  appid?: string;
  page?: string;
  article?: string;
};

export const KINDS: Kind[] = ['text', 'image', 'link', 'miniprogram', 'video', 'file', 'article'];
const CATEGORIES: Category[] = ['story', 'knowledge', 'case', 'news', 'promotion', 'product', 'event', 'other'];
const SOURCES: Source[] = ['bgc', 'pgc', 'ogc', 'ugc'];
/** The body fields each kind takes, in the order the form shows them. */
const BODY: Record<Kind, (keyof Values)[]> = {
  text: ['text'],
  image: ['file_id'],
  video: ['file_id'],
  file: ['file_id'],
  link: ['url', 'description', 'image_file_id'],
  miniprogram: ['appid', 'page', 'image_file_id'],
  article: ['article', 'description', 'image_file_id'],
};
const FIELDS = ['kind', 'title', 'category', 'source', 'tags', 'text', 'file_id', 'url', 'description', 'image_file_id', 'appid', 'page', 'article'];
const ACCEPT: Partial<Record<Kind, string>> = { image: 'image/png,image/jpeg', video: 'video/mp4' };

/** Uploads a file to the library (the body is the file); answers its id. */
async function uploadFile(file: File): Promise<number> {
  const response = await fetch(`/api/v1/content/files?name=${encodeURIComponent(file.name)}`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': file.type || 'application/octet-stream' },
    body: file,
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, body?.error?.code ?? `http_${response.status}`, body?.error?.message ?? response.statusText, body?.error?.details);
  }
  return body.id as number;
}

/** A file field: the uploaded file's id, set by choosing a file. */
function FileField({ value, onChange, accept, testId }: { value?: number; onChange?: (id: number) => void; accept?: string; testId: string }) {
  const { t } = useLocale();
  const input = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <Space orientation="vertical">
      <Space>
        <Button icon={<UploadOutlined />} loading={busy} onClick={() => input.current?.click()}>
          {value ? t('content.replaceFile') : t('content.chooseFile')}
        </Button>
        {value ? <Typography.Text type="secondary" data-testid={`${testId}-id`}>#{value}</Typography.Text> : null}
      </Space>
      <input
        ref={input}
        type="file"
        hidden
        accept={accept}
        data-testid={testId}
        onChange={async (e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (!file) return;
          setBusy(true);
          setError(null);
          try {
            onChange?.(await uploadFile(file));
          } catch (err) {
            setError(errorMessage(err));
          } finally {
            setBusy(false);
          }
        }}
      />
      {error && <Typography.Text type="danger">{error}</Typography.Text>}
    </Space>
  );
}

export function ContentPage() {
  const { t, locale } = useLocale();
  const { can } = useSession();
  const editable = can('content.write');
  const [filter, setFilter] = useState<{ kind?: Kind; category?: Category; source?: Source; tag?: string; q?: string }>({});
  const items = useApi(() => unwrap(api.GET('/api/v1/content', { params: { query: { ...filter, limit: 200 } } })), [JSON.stringify(filter)]);
  const [editing, setEditing] = useState<Item | 'new' | null>(null);
  const [showing, setShowing] = useState<Item | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [form] = Form.useForm<Values>();
  const kind = Form.useWatch('kind', form) ?? 'text';
  const current = editing === 'new' ? null : editing;
  const kindName = (k: Kind) => t(`content.kind.${k}` as MessageKey);
  const categoryName = (c: Category) => t(`content.category.${c}` as MessageKey);

  async function submit(v: Values) {
    const body: Record<string, unknown> = { title: v.title, category: v.category, source: v.source, tags: v.tags ?? [] };
    for (const field of BODY[current?.kind ?? v.kind]) {
      const value = v[field];
      if (value !== undefined && value !== null && value !== '') body[field] = value;
    }
    if (!current) {
      await unwrap(api.POST('/api/v1/content', { body: { ...body, kind: v.kind } as Schemas['NewContentItem'] }));
    } else {
      await unwrap(api.PATCH('/api/v1/content/{id}', { params: { path: { id: current.id } }, body: body as Schemas['ContentItemChange'] }));
    }
    await items.reload();
  }

  async function remove(item: Item) {
    setError(null);
    try {
      await unwrap(api.DELETE('/api/v1/content/{id}', { params: { path: { id: item.id } } }));
      await items.reload();
    } catch (e) {
      setError(errorMessage(e));
    }
  }

  const values: Partial<Values> = current
    ? {
        kind: current.kind,
        title: current.title,
        category: current.category,
        source: current.source,
        tags: current.tags,
        text: current.text ?? undefined,
        file_id: current.file_id ?? undefined,
        url: current.url ?? undefined,
        description: current.description ?? undefined,
        image_file_id: current.image_file_id ?? undefined,
        appid: current.appid ?? undefined,
        page: current.page ?? undefined,
        article: current.article ?? undefined,
      }
    : { kind: 'text', category: 'other', source: 'bgc', tags: [] };
  const rows: Row[] = (items.data?.items ?? []).map((i) => ({ ...i, name: i.title }));
  const shownKind = current?.kind ?? kind;

  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('content.title')}
        </Typography.Title>
        {editable && (
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="new-content">
            {t('content.new')}
          </Button>
        )}
      </Space>
      <Space wrap>
        <Select allowClear placeholder={t('content.kind')} aria-label={t('content.kind')} style={{ width: 130 }} data-testid="content-filter-kind"
          options={KINDS.map((k) => ({ value: k, label: kindName(k) }))} onChange={(k?: Kind) => setFilter((f) => ({ ...f, kind: k }))} />
        <Select allowClear placeholder={t('content.category')} aria-label={t('content.category')} style={{ width: 130 }}
          options={CATEGORIES.map((c) => ({ value: c, label: categoryName(c) }))} onChange={(c?: Category) => setFilter((f) => ({ ...f, category: c }))} />
        <Select allowClear placeholder={t('content.source')} aria-label={t('content.source')} style={{ width: 110 }}
          options={SOURCES.map((s) => ({ value: s, label: s.toUpperCase() }))} onChange={(s?: Source) => setFilter((f) => ({ ...f, source: s }))} />
        <Input.Search allowClear placeholder={t('content.tag')} aria-label={t('content.tag')} style={{ width: 150 }} onSearch={(tag) => setFilter((f) => ({ ...f, tag: tag || undefined }))} />
        <Input.Search allowClear placeholder={t('content.search')} aria-label={t('content.search')} style={{ width: 200 }} data-testid="content-search"
          onSearch={(q) => setFilter((f) => ({ ...f, q: q || undefined }))} />
      </Space>
      {(error || items.error) && <Alert type="error" showIcon title={error ?? items.error} role="alert"  />}
      <Table<Row>
        data-testid="content-items"
        size="small"
        loading={items.loading}
        rowKey="id"
        dataSource={rows}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        columns={[
          {
            title: '',
            key: 'preview',
            width: 56,
            render: (_: unknown, i: Row) => {
              const image = i.kind === 'image' ? i.file_id : i.image_file_id;
              return image ? <img src={`/api/v1/content/files/${image}`} alt="" width={40} height={40} style={{ objectFit: 'cover', borderRadius: 4 }} /> : null;
            },
          },
          { title: t('content.itemTitle'), dataIndex: 'title', render: (title: string, i: Row) => <span data-testid={`content-${i.id}`}>{title}</span> },
          { title: t('content.kind'), dataIndex: 'kind', render: (k: Kind) => <Tag>{kindName(k)}</Tag> },
          { title: t('content.category'), dataIndex: 'category', render: categoryName },
          { title: t('content.source'), dataIndex: 'source', render: (s: Source) => s.toUpperCase() },
          { title: t('content.tags'), dataIndex: 'tags', render: (tags: string[]) => tags.map((tag) => <Tag key={tag}>{tag}</Tag>) },
          {
            title: t('content.body'),
            key: 'body',
            ellipsis: true,
            render: (_: unknown, i: Row) => i.text ?? i.url ?? i.article ?? (i.appid ? `${i.appid} ${i.page ?? ''}` : i.file_id ? <a href={`/api/v1/content/files/${i.file_id}`} target="_blank" rel="noreferrer">{t('content.open')}</a> : '—'),
          },
          { title: t('content.updated'), dataIndex: 'updated_at', render: (at: string) => formatTime(locale, at) },
          ...(can('broadcasts.read')
            ? [
                {
                  title: t('content.performance'),
                  key: 'performance',
                  render: (_: unknown, i: Row) => (
                    <Button size="small" type="link" onClick={() => setShowing(i)} data-testid={`content-performance-${i.id}`}>
                      {t('content.performance')}
                    </Button>
                  ),
                },
              ]
            : []),
          ...actionsColumn<Row>(editable, t('common.actions'), {
            kind: 'content',
            confirm: (i) => t('content.confirmDelete', { name: i.title }),
            onEdit: (i) => setEditing(i),
            onDelete: (i) => remove(i),
          }),
        ]}
      />
      {showing && <ContentPerformance id={showing.id} title={showing.title} onClose={() => setShowing(null)} />}
      <FormModal<Values>
        open={editing !== null}
        title={current ? t('content.edit') : t('content.new')}
        form={form}
        values={values}
        onClose={() => setEditing(null)}
        submit={submit}
        fieldOf={(f) => (FIELDS.includes(f) ? [f] : null)}
        name="content-form"
        width={640}
      >
        <Form.Item name="kind" label={t('content.kind')} rules={[{ required: true }]}>
          <Select disabled={!!current} data-testid="content-kind" options={KINDS.map((k) => ({ value: k, label: kindName(k) }))} />
        </Form.Item>
        <Form.Item name="title" label={t('content.itemTitle')} rules={[{ required: true, whitespace: true }]}>
          <Input maxLength={100} data-testid="content-title" />
        </Form.Item>
        <Space>
          <Form.Item name="category" label={t('content.category')}>
            <Select style={{ width: 140 }} options={CATEGORIES.map((c) => ({ value: c, label: categoryName(c) }))} />
          </Form.Item>
          <Form.Item name="source" label={t('content.source')}>
            <Select style={{ width: 110 }} options={SOURCES.map((s) => ({ value: s, label: s.toUpperCase() }))} />
          </Form.Item>
        </Space>
        <Form.Item name="tags" label={t('content.tags')}>
          <Select mode="tags" tokenSeparators={[',', '，']} data-testid="content-tags" />
        </Form.Item>
        {BODY[shownKind].includes('text') && (
          <Form.Item name="text" label={t('content.text')} rules={[{ required: true, whitespace: true }]}>
            <Input.TextArea rows={4} data-testid="content-text" />
          </Form.Item>
        )}
        {BODY[shownKind].includes('file_id') && (
          <Form.Item name="file_id" label={t('content.file')} rules={[{ required: true }]}>
            <FileField accept={ACCEPT[shownKind]} testId="content-file" />
          </Form.Item>
        )}
        {BODY[shownKind].includes('url') && (
          <Form.Item name="url" label="URL" rules={[{ required: true }]}>
            <Input placeholder="https://" data-testid="content-url" />
          </Form.Item>
        )}
        {BODY[shownKind].includes('appid') && (
          <Space>
            <Form.Item name="appid" label="AppID" rules={[{ required: true }]}>
              <Input placeholder="wx…" style={{ width: 220 }} />
            </Form.Item>
            <Form.Item name="page" label={t('content.page')} rules={[{ required: true }]}>
              <Input placeholder="pages/index/index" style={{ width: 280 }} />
            </Form.Item>
          </Space>
        )}
        {BODY[shownKind].includes('article') && (
          <Form.Item name="article" label={t('content.article')} rules={[{ required: true, whitespace: true }]}>
            <Input.TextArea rows={8} />
          </Form.Item>
        )}
        {BODY[shownKind].includes('description') && (
          <Form.Item name="description" label={shownKind === 'article' ? t('content.summary') : t('content.description')}>
            <Input maxLength={200} />
          </Form.Item>
        )}
        {BODY[shownKind].includes('image_file_id') && (
          <Form.Item name="image_file_id" label={t('content.image')} rules={[{ required: shownKind === 'miniprogram' }]}>
            <FileField accept="image/png,image/jpeg" testId="content-image" />
          </Form.Item>
        )}
      </FormModal>
    </Space>
  );
}
