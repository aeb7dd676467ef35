// What the Acquisition page shows names of and its forms pick from: staff, units, channel
// accounts, WeCom connectors and tags, each read only when the caller may (else empty,
// and ids are shown as `#id`).
import { api, unwrap, type Schemas } from '../api/client';
import { useSession } from '../session';
import { useApi } from '../useApi';

export type ChannelAccount = Schemas['ChannelAccount'];

export function useAcquisitionLookups() {
  const { can } = useSession();
  const staff = useApi(async () => (can('staff.read') ? (await unwrap(api.GET('/api/v1/staff', { params: { query: { limit: 500 } } }))).items : []), [can]);
  const units = useApi(async () => (can('units.read') ? (await unwrap(api.GET('/api/v1/units', { params: { query: { limit: 500 } } }))).items : []), [can]);
  const accounts = useApi(async () => (await unwrap(api.GET('/api/v1/channel-accounts', { params: { query: { limit: 500 } } }))).items, []);
  const connectors = useApi(async () => (can('connectors.read') ? await unwrap(api.GET('/api/v1/connectors')) : []), [can]);
  const tags = useApi(async () => (can('tags.read') ? await unwrap(api.GET('/api/v1/tags')) : []), [can]);
  const named = <T extends { id: number; name: string }>(items: T[] | undefined) => {
    const names = new Map((items ?? []).map((i) => [i.id, i.name]));
    return (id: number | null | undefined) => (id == null ? '—' : (names.get(id) ?? `#${id}`));
  };
  return {
    staff,
    units,
    accounts,
    connectors,
    tags,
    /** Whether the caller may list staff (to pick members and owners from). */
    staffListed: can('staff.read'),
    /** Whether the caller may list WeCom connectors and their members and group chats. */
    connectorsListed: can('connectors.read'),
    unitsListed: can('units.read'),
    tagsListed: can('tags.read'),
    staffName: named(staff.data),
    unitName: named(units.data),
    accountName: named(accounts.data),
    connectorName: named(connectors.data),
    /** Options for a staff select: the active staff, and the `keep` ids (values already
     * set) even when not listed. */
    staffOptions: (keep: number[] = []) => {
      const list = (staff.data ?? []).filter((s) => s.status === 'active' || keep.includes(s.id));
      const listed = new Set(list.map((s) => s.id));
      return [
        ...list.map((s) => ({ value: s.id, label: s.name })),
        ...keep.filter((id) => !listed.has(id)).map((id) => ({ value: id, label: `#${id}` })),
      ];
    },
  };
}

export type Lookups = ReturnType<typeof useAcquisitionLookups>;
