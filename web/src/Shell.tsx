// The frame around every page: the menu (only what the role may open), the tenant, the
// language switch and the user menu.
import {
  ApartmentOutlined,
  ApiOutlined,
  QrcodeOutlined,
  AuditOutlined,
  NotificationOutlined,
  MessageOutlined,
  PictureOutlined,
  CloudUploadOutlined,
  DashboardOutlined,
  DatabaseOutlined,
  KeyOutlined,
  ScheduleOutlined,
  SafetyOutlined,
  SettingOutlined,
  TagsOutlined,
  TeamOutlined,
  ThunderboltOutlined,
  UserOutlined,
  UsergroupAddOutlined,
  WechatWorkOutlined,
} from '@ant-design/icons';
import { Button, Dropdown, Layout, Menu, Space, Typography } from 'antd';
import type { ItemType } from 'antd/es/menu/interface';
import { Outlet, useLocation, useNavigate } from 'react-router';
import { useLocale, type MessageKey } from './i18n';
import { useSession } from './session';

type Entry = { path: string; label: MessageKey; icon: React.ReactNode; permission?: string };

const groups: { label: MessageKey | null; entries: Entry[] }[] = [
  {
    label: null,
    entries: [
      { path: '/dashboard', label: 'nav.dashboard', icon: <DashboardOutlined />, permission: 'analytics.read' },
      { path: '/customers', label: 'nav.customers', icon: <UserOutlined />, permission: 'customers.read' },
      { path: '/segments', label: 'nav.segments', icon: <UsergroupAddOutlined />, permission: 'segments.read' },
      { path: '/tags', label: 'nav.tags', icon: <TagsOutlined />, permission: 'tags.read' },
      { path: '/tag-rules', label: 'nav.tagRules', icon: <ThunderboltOutlined />, permission: 'tags.read' },
    ],
  },
  {
    label: 'nav.data',
    entries: [
      { path: '/sources', label: 'nav.sources', icon: <DatabaseOutlined />, permission: 'sources.read' },
      { path: '/channels', label: 'nav.channels', icon: <WechatWorkOutlined />, permission: 'connectors.read' },
      { path: '/acquisition', label: 'nav.acquisition', icon: <QrcodeOutlined />, permission: 'campaigns.read' },
      { path: '/imports', label: 'nav.imports', icon: <CloudUploadOutlined />, permission: 'customers.import' },
      { path: '/jobs', label: 'nav.jobs', icon: <ScheduleOutlined />, permission: 'jobs.read' },
    ],
  },
  {
    label: 'nav.engagement',
    entries: [
      { path: '/broadcasts', label: 'nav.broadcasts', icon: <NotificationOutlined />, permission: 'broadcasts.read' },
      { path: '/content', label: 'nav.content', icon: <PictureOutlined />, permission: 'content.read' },
      { path: '/quick-replies', label: 'nav.quickReplies', icon: <MessageOutlined />, permission: 'content.read' },
    ],
  },
  {
    label: 'nav.admin',
    entries: [
      { path: '/staff', label: 'nav.staff', icon: <TeamOutlined />, permission: 'staff.read' },
      { path: '/units', label: 'nav.units', icon: <ApartmentOutlined />, permission: 'units.read' },
      { path: '/roles', label: 'nav.roles', icon: <SafetyOutlined />, permission: 'roles.read' },
      { path: '/tokens', label: 'nav.tokens', icon: <KeyOutlined />, permission: 'tokens.read' },
      { path: '/audit', label: 'nav.audit', icon: <AuditOutlined />, permission: 'audit.read' },
      { path: '/settings', label: 'nav.settings', icon: <SettingOutlined /> },
    ],
  },
];

export function Shell() {
  const { t, locale, setLocale } = useLocale();
  const { me, can, signOut } = useSession();
  const navigate = useNavigate();
  const location = useLocation();

  const items: ItemType[] = [];
  for (const group of groups) {
    const entries = group.entries
      .filter((e) => !e.permission || can(e.permission))
      .map((e) => ({ key: e.path, icon: e.icon, label: t(e.label) }));
    if (entries.length === 0) continue;
    if (group.label) items.push({ type: 'group', key: group.label, label: t(group.label), children: entries });
    else items.push(...entries);
  }
  const selected = '/' + (location.pathname.split('/')[1] ?? '');

  return (
    <Layout style={{ minHeight: '100vh' }}>
      <Layout.Sider width={208} theme="light" breakpoint="lg" collapsedWidth={64} style={{ borderRight: '1px solid #f0f0f0' }}>
        <div style={{ padding: '16px 20px', fontWeight: 600, fontSize: 16, whiteSpace: 'nowrap', overflow: 'hidden' }}>
          <ApiOutlined style={{ color: '#1f5eff', marginRight: 8 }} />
          {t('app.name')}
        </div>
        <nav aria-label={t('app.name')}>
          <Menu mode="inline" selectedKeys={[selected]} items={items} onClick={(e) => navigate(e.key)} style={{ borderInlineEnd: 0 }} />
        </nav>
      </Layout.Sider>
      <Layout>
        <Layout.Header style={{ background: '#fff', padding: '0 24px', display: 'flex', justifyContent: 'space-between', alignItems: 'center', borderBottom: '1px solid #f0f0f0' }}>
          <Typography.Text strong>{me?.tenant.name}</Typography.Text>
          <Space>
            <Button type="text" data-testid="language" onClick={() => setLocale(locale === 'zh' ? 'en' : 'zh')}>
              {t('common.language')}
            </Button>
            <Dropdown
              menu={{
                items: [
                  { key: 'settings', label: t('nav.settings'), onClick: () => navigate('/settings') },
                  { key: 'logout', label: t('common.logout'), onClick: () => void signOut() },
                ],
              }}
            >
              <Button type="text" icon={<UserOutlined />} data-testid="user-menu">
                {me?.staff?.name ?? me?.role}
              </Button>
            </Dropdown>
          </Space>
        </Layout.Header>
        <Layout.Content style={{ padding: 24, minWidth: 0 }}>
          <main>
            <Outlet />
          </main>
        </Layout.Content>
      </Layout>
    </Layout>
  );
}
