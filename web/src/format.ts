// Numbers, money and times for the chosen locale and the tenant's time zone.
import type { Locale } from './i18n';

/** The tenant's time zone (from `/api/v1/me`): times and days are shown in it. */
let tenantTimeZone = 'Asia/Shanghai';

export function setTenantTimeZone(zone: string) {
  tenantTimeZone = zone;
}

/** The tenant currency (from `/api/v1/me`): figures are kept and shown in it. */
let tenantCurrency = 'CNY';

export function setTenantCurrency(currency: string) {
  tenantCurrency = currency;
}

const tag = (locale: Locale) => (locale === 'zh' ? 'zh-CN' : 'en-US');

export function formatNumber(locale: Locale, n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return new Intl.NumberFormat(tag(locale), { maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(n);
}

/** Money arrives from the API as decimal numbers of major units; figures are in the
 * tenant currency, an order's amount in the order's own. */
export function formatMoney(locale: Locale, amount: string | number | null | undefined, currency = tenantCurrency, digits?: number): string {
  if (amount === null || amount === undefined || amount === '') return '—';
  const n = typeof amount === 'number' ? amount : Number(amount);
  if (Number.isNaN(n)) return String(amount);
  const fraction = digits === undefined ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
  return new Intl.NumberFormat(tag(locale), { style: 'currency', currency, ...fraction }).format(n);
}

export function formatPercent(locale: Locale, ratio: number | null | undefined, digits = 1): string {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return '—';
  return new Intl.NumberFormat(tag(locale), { style: 'percent', maximumFractionDigits: digits }).format(ratio);
}

export function formatTime(locale: Locale, iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(tag(locale), {
    timeZone: timeZone ?? tenantTimeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false,
  }).format(d);
}

export function formatDate(locale: Locale, iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return '—';
  const d = new Date(iso.length === 10 ? iso + 'T00:00:00Z' : iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(tag(locale), {
    timeZone: iso.length === 10 ? 'UTC' : (timeZone ?? tenantTimeZone),
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(d);
}

/** Today's date (`YYYY-MM-DD`) in the tenant's time zone. */
export function tenantToday(): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: tenantTimeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
}
