// Chinese (default) and English. Each message sits with both its texts, so a new page
// adds its words in one place and neither language can miss one.
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';

export type Locale = 'zh' | 'en';

const messages = {
  'app.name': ['私域运营平台', 'siyu private-domain'],
  'nav.dashboard': ['数据看板', 'Dashboard'],
  'nav.customers': ['客户', 'Customers'],
  'nav.segments': ['分群', 'Segments'],
  'nav.tags': ['标签', 'Tags'],
  'nav.tagRules': ['自动打标签', 'Tag rules'],
  'nav.sources': ['数据源', 'Sources'],
  'nav.imports': ['导入', 'Imports'],
  'nav.staff': ['员工', 'Staff'],
  'nav.units': ['组织', 'Units'],
  'nav.roles': ['角色', 'Roles'],
  'nav.tokens': ['API 令牌', 'API tokens'],
  'nav.audit': ['审计日志', 'Audit log'],
  'nav.settings': ['设置', 'Settings'],
  'nav.data': ['客户数据', 'Customer data'],
  'nav.admin': ['管理', 'Administration'],
  'login.title': ['登录', 'Sign in'],
  'login.email': ['邮箱', 'Email'],
  'login.password': ['密码', 'Password'],
  'login.submit': ['登录', 'Sign in'],
  'login.expired': ['登录已过期，请重新登录', 'Your session has expired; please sign in again'],
  'login.tenant': ['租户', 'Tenant'],
  'login.chooseTenant': ['此邮箱在多个租户中都是员工，请选择要登录的租户', 'This email is staff of several tenants: choose one to sign in to'],
  'common.logout': ['退出登录', 'Sign out'],
  'common.search': ['搜索', 'Search'],
  'common.save': ['保存', 'Save'],
  'common.cancel': ['取消', 'Cancel'],
  'common.create': ['新建', 'Create'],
  'common.edit': ['编辑', 'Edit'],
  'common.delete': ['删除', 'Delete'],
  'common.confirmDelete': ['确定删除？', 'Delete it?'],
  'common.name': ['名称', 'Name'],
  'common.loadMore': ['加载更多', 'Load more'],
  'common.empty': ['暂无数据', 'No data'],
  'common.table': ['表格', 'Table'],
  'common.chart': ['图表', 'Chart'],
  'common.created': ['创建时间', 'Created'],
  'common.actions': ['操作', 'Actions'],
  'common.all': ['全部', 'All'],
  'common.unit': ['组织单元', 'Unit'],
  'common.dateRange': ['日期范围', 'Date range'],
  'common.count': ['人数', 'Count'],
  'common.unsaved': ['有未保存的修改，确定离开？', 'You have unsaved changes. Leave anyway?'],
  'common.forbidden': ['没有权限访问此页面', 'You do not have permission to open this page'],
  'common.notFound': ['页面不存在', 'Page not found'],
  'common.saved': ['已保存', 'Saved'],
  'common.language': ['English', '中文'],
  'customers.searchPlaceholder': ['姓名、手机、邮箱或身份标识', 'Name, phone, email or identity'],
  'customers.name': ['姓名', 'Name'],
  'customers.phone': ['手机', 'Phone'],
  'customers.email': ['邮箱', 'Email'],
  'customers.lastSeen': ['最近活跃', 'Last seen'],
  'customers.firstSeen': ['首次出现', 'First seen'],
  'customers.orders': ['订单', 'Orders'],
  'customers.total': ['消费金额', 'Spend'],
  'customers.owner': ['归属员工', 'Owner'],
  'customers.bulkTag': ['批量打标签', 'Tag selected'],
  'customers.selected': ['已选 {n} 位客户', '{n} customers selected'],
  'customers.identities': ['身份标识', 'Identities'],
  'customers.traits': ['属性', 'Traits'],
  'customers.tags': ['标签', 'Tags'],
  'customers.scores': ['价值分层', 'Value'],
  'customers.timeline': ['时间线', 'Timeline'],
  'customers.notes': ['备注', 'Notes'],
  'customers.consent': ['授权与免打扰', 'Consent'],
  'customers.reveal': ['查看完整信息', 'Reveal'],
  'customers.revealed': ['已显示完整信息（已记录审计）', 'Shown in full (audited)'],
  'customers.addNote': ['添加备注', 'Add note'],
  'customers.addTag': ['添加标签', 'Add tag'],
  'customers.savedViews': ['常用筛选', 'Saved views'],
  'customers.assign': ['分配给员工', 'Assign to staff'],
  'customers.filterActive': ['按分群条件筛选中', 'Filtered by a definition'],
  'customers.tagAllMatching': ['为全部匹配客户打标签', 'Tag everyone who matches'],
  'customers.saveView': ['保存当前筛选', 'Save this view'],
  'customers.rfm': ['RFM 分类', 'RFM class'],
  'customers.stage': ['生命周期', 'Lifecycle stage'],
  'customers.valueTier': ['价值等级', 'Value tier'],
  'customers.sources': ['来源', 'Sources'],
  'customers.orderCount': ['订单数', 'Orders'],
  'customers.aov': ['客单价', 'Average order'],
  'segments.definition': ['分群条件', 'Definition'],
  'segments.liveCount': ['实时人数', 'Live count'],
  'segments.kind': ['类型', 'Kind'],
  'segments.dynamic': ['动态', 'Dynamic'],
  'segments.static': ['静态', 'Static'],
  'segments.members': ['成员', 'Members'],
  'segments.new': ['新建分群', 'New segment'],
  'segments.form': ['表单', 'Form'],
  'segments.text': ['查询语言', 'Text'],
  'segments.addClause': ['添加条件', 'Add condition'],
  'segments.export': ['导出 CSV', 'Export CSV'],
  'segments.sample': ['样例客户', 'Sample'],
  'tags.groups': ['标签组', 'Tag groups'],
  'tags.color': ['颜色', 'Colour'],
  'tags.customers': ['客户数', 'Customers'],
  'tagRules.condition': ['条件', 'Condition'],
  'tagRules.add': ['添加标签', 'Adds'],
  'tagRules.remove': ['移除标签', 'Removes'],
  'tagRules.enabled': ['启用', 'Enabled'],
  'sources.writeKey': ['Write Key', 'Write key'],
  'sources.kind': ['类型', 'Kind'],
  'sources.received': ['已接收', 'Received'],
  'sources.rejected': ['已拒绝', 'Rejected'],
  'sources.lastEvent': ['最近事件', 'Last event'],
  'sources.rotate': ['轮换密钥', 'Rotate key'],
  'sources.snippet': ['接入代码', 'SDK snippet'],
  'staff.email': ['邮箱', 'Email'],
  'staff.role': ['角色', 'Role'],
  'staff.status': ['状态', 'Status'],
  'audit.actor': ['操作人', 'Actor'],
  'audit.action': ['操作', 'Action'],
  'audit.target': ['对象', 'Target'],
  'audit.time': ['时间', 'Time'],
  'dash.added': ['新增客户', 'Customers added'],
  'dash.lost': ['流失客户', 'Customers lost'],
  'dash.net': ['净增', 'Net'],
  'dash.growth': ['客户增长（按渠道）', 'Customer growth by channel'],
  'dash.funnel': ['AARRR 漏斗', 'AARRR funnel'],
  'dash.retention': ['留存（按获客渠道）', 'Retention by acquisition channel'],
  'dash.repurchase': ['复购：私域 vs 其他', 'Repurchase: private domain vs others'],
  'dash.repurchaseRate': ['复购率', 'Repurchase rate'],
  'dash.frequency': ['购买频次', 'Purchase frequency'],
  'dash.privateShare': ['私域 GMV 占比', 'Private-domain share of GMV'],
  'dash.gmv': ['GMV', 'GMV'],
  'dash.aov': ['客单价', 'Average order value'],
  'dash.rfm': ['RFM 分布', 'RFM classes'],
  'dash.pareto': ['关键客户（帕累托）', 'Key customers (Pareto)'],
  'dash.paretoText': ['{share} 的客户贡献了 80% 的 GMV', '{share} of customers bring 80% of GMV'],
  'dash.weekly': ['按周', 'Weekly'],
  'dash.monthly': ['按月', 'Monthly'],
  'dash.cohort': ['批次', 'Cohort'],
  'dash.private': ['私域客户', 'Private-domain customers'],
  'dash.others': ['其他客户', 'Other customers'],
  'dash.customers': ['客户数', 'Customers'],
  'dash.buyers': ['购买客户', 'Buyers'],
  'dash.orders': ['订单数', 'Orders'],
  'settings.rfm': ['RFM 设置', 'RFM settings'],
  'settings.lifecycle': ['生命周期设置', 'Lifecycle settings'],
  'settings.identity': ['识别同一人的身份类型', 'Identity kinds that name one person'],
  'settings.identityHelp': ['一个客户每类最多一个值；值不同的两个客户不会因共用手机、设备等被合并。按顺序排优先级。', 'A customer holds at most one value of each; two customers with different values never merge over a shared phone or device. Ranked in this order.'],
  'settings.koc': ['种子用户 / KOC 设置', 'Seed users / KOC'],
  'settings.currency': ['币种与汇率', 'Currency and exchange rates'],
  'settings.currencyHelp': ['所有金额指标以租户币种计。外币订单按订单自带汇率、否则按此处汇率折算，汇率在订单记录时固定；没有汇率的外币订单会被拒绝。已有订单后不能再改租户币种。', 'Every figure is kept in the tenant currency. An order in another currency counts at its own exchange rate, else the rate here, fixed when it is recorded; an order in a currency with no rate is refused. The tenant currency cannot change once there are orders.'],
  'settings.tenantCurrency': ['租户币种', 'Tenant currency'],
  'settings.rateCurrency': ['外币', 'Currency'],
  'settings.rate': ['汇率（1 单位外币折合租户币种）', 'Rate (tenant currency per unit)'],
  'settings.addRate': ['添加汇率', 'Add a rate'],
  'settings.removeRate': ['删除汇率', 'Remove rate'],
  'settings.password': ['修改密码', 'Change password'],
  'settings.current': ['当前密码', 'Current password'],
  'settings.new': ['新密码', 'New password'],
} as const satisfies Record<string, readonly [string, string]>;

export type MessageKey = keyof typeof messages;

type Ctx = { locale: Locale; setLocale: (l: Locale) => void; t: (k: MessageKey, vars?: Record<string, string | number>) => string };

const LocaleContext = createContext<Ctx | null>(null);

export function LocaleProvider({ children }: { children: ReactNode }) {
  const [locale, setLocaleState] = useState<Locale>(() => (localStorage.getItem('siyu.locale') === 'en' ? 'en' : 'zh'));
  useEffect(() => {
    document.documentElement.lang = locale === 'zh' ? 'zh-CN' : 'en';
  }, [locale]);
  const value = useMemo<Ctx>(() => {
    const setLocale = (l: Locale) => {
      localStorage.setItem('siyu.locale', l);
      setLocaleState(l);
    };
    const t = (k: MessageKey, vars?: Record<string, string | number>) => {
      let text: string = messages[k][locale === 'zh' ? 0 : 1];
      for (const [name, v] of Object.entries(vars ?? {})) text = text.replace(`{${name}}`, String(v));
      return text;
    };
    return { locale, setLocale, t };
  }, [locale]);
  return <LocaleContext.Provider value={value}>{children}</LocaleContext.Provider>;
}

export function useLocale(): Ctx {
  const ctx = useContext(LocaleContext);
  if (!ctx) throw new Error('useLocale outside LocaleProvider');
  return ctx;
}
