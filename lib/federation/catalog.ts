/**
 * The merged lists of a virtual server: each member's tools, prompts, resources and resource
 * templates, filtered and renamed as configured, under exposed names that map back to the member
 * and its own name. Resource URIs are namespaced reversibly (`<namespace>+<uri>`, itself a URI
 * whose scheme is the namespace joined to the original one), so a read of a URI nobody listed
 * (a template's expansion) still finds its member.
 */
import { globMatcher, type GlobMatcher } from '../glob.ts'
import type { KindFilter } from './options.ts'

export type ListKind = 'tools' | 'prompts' | 'resources' | 'resourceTemplates'
export type Naming = 'prefix' | 'collision' | 'none'

export const LIST_KINDS: readonly ListKind[] = ['tools', 'prompts', 'resources', 'resourceTemplates']

/** Per kind: the list method, the field naming an item, and the capability that offers it. */
export const KIND = {
  tools: { method: 'tools/list', key: 'name', capability: 'tools', changed: 'notifications/tools/list_changed' },
  prompts: { method: 'prompts/list', key: 'name', capability: 'prompts', changed: 'notifications/prompts/list_changed' },
  resources: { method: 'resources/list', key: 'uri', capability: 'resources', changed: 'notifications/resources/list_changed' },
  resourceTemplates: { method: 'resources/templates/list', key: 'uriTemplate', capability: 'resources', changed: 'notifications/resources/list_changed' }
} as const satisfies Record<ListKind, { method: string, key: string, capability: string, changed: string }>

export type Item = Record<string, unknown>

/** One member as the catalog sees it: where its names come from and how they are shown. */
export interface CatalogMember {
  index: number
  namespace: string
  filter: CompiledFilter
}

export interface CompiledFilter {
  include: GlobMatcher | undefined
  exclude: GlobMatcher
  rename: ReadonlyMap<string, string>
  describe: ReadonlyMap<string, string>
}

export function compileFilter (filter: KindFilter | undefined): CompiledFilter {
  return {
    include: filter?.include === undefined ? undefined : globMatcher(filter.include),
    exclude: globMatcher(filter?.exclude ?? []),
    rename: new Map(Object.entries(filter?.rename ?? {})),
    describe: new Map(Object.entries(filter?.describe ?? {}))
  }
}

/** One exposed item: which member has it, under what name there, and what the client sees. */
export interface Entry {
  member: number
  own: string
  exposed: string
  item: Item
}

/** A merged list: the items in order, and exposed name -> entry (and member + own name -> exposed). */
export interface Merged {
  items: Item[]
  byExposed: Map<string, Entry>
  exposedOf: Map<string, string>
  /** Until when the list is good, and for whom (what a 2026-07-28 client is told: `ttlMs`, `cacheScope`). */
  until?: number
  scope?: 'public' | 'private'
}

export interface NamingRules {
  naming: Naming
  separator: string
}

/** The exposed form of a member's own name (or URI), when it is to be namespaced. */
export function prefixed (kind: ListKind, namespace: string, own: string, separator: string): string {
  return kind === 'tools' || kind === 'prompts' ? `${namespace}${separator}${own}` : `${namespace}+${own}`
}

function memberKey (member: number, own: string): string {
  return `${member}\u0000${own}`
}

/**
 * Merges the members' lists (`lists[i]` is member i's, undefined when it is left out: down, slow,
 * or not offering the kind). Members come in priority order: with naming `none`, a name two
 * members share goes to the first; with `collision`, both are namespaced.
 */
export function mergeLists (kind: ListKind, rules: NamingRules, members: readonly CatalogMember[], lists: ReadonlyArray<readonly Item[] | undefined>): Merged {
  const key = KIND[kind].key
  const kept: Array<{ member: CatalogMember, own: string, renamed: string | undefined, item: Item }> = []
  const owners = new Map<string, number>()
  for (const member of members) {
    const list = lists[member.index]
    if (list === undefined) continue
    const { include, exclude, rename } = member.filter
    for (const item of list) {
      const own = item[key]
      if (typeof own !== 'string' || (include !== undefined && !include.test(own)) || exclude.test(own)) continue
      kept.push({ member, own, renamed: rename.get(own), item })
      owners.set(own, (owners.get(own) ?? 0) + 1)
    }
  }
  const merged: Merged = { items: [], byExposed: new Map(), exposedOf: new Map() }
  for (const { member, own, renamed, item } of kept) {
    const shared = (owners.get(own) ?? 0) > 1
    const exposed = renamed ?? (rules.naming === 'prefix' || (rules.naming === 'collision' && shared)
      ? prefixed(kind, member.namespace, own, rules.separator)
      : own)
    // The first member listed wins a name that is still shared (naming `none`, or a rename).
    if (merged.byExposed.has(exposed)) continue
    const description = member.filter.describe.get(own)
    const shown: Item = { ...item, [key]: exposed }
    if (description !== undefined) shown.description = description
    merged.items.push(shown)
    merged.byExposed.set(exposed, { member: member.index, own, exposed, item: shown })
    merged.exposedOf.set(memberKey(member.index, own), exposed)
  }
  return merged
}

/** The name (or URI) a client sees for a member's own one, per the last merged list. */
export function exposedName (merged: Merged | undefined, member: number, own: string): string | undefined {
  return merged?.exposedOf.get(memberKey(member, own))
}

/** The gateway's own list cursors: where the next page starts, encoded, so any instance continues. */
export function encodeCursor (kind: ListKind, offset: number): string {
  return Buffer.from(JSON.stringify({ k: kind, o: offset })).toString('base64url')
}

/** The offset a cursor names, or undefined when it is not one of ours for this kind. */
export function decodeCursor (kind: ListKind, cursor: unknown): number | undefined {
  if (typeof cursor !== 'string' || cursor.length > 256) return undefined
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { k?: unknown, o?: unknown }
    return value.k === kind && Number.isSafeInteger(value.o) && (value.o as number) >= 0 ? value.o as number : undefined
  } catch {
    return undefined
  }
}

/** One page of a merged list, with the next page's cursor when there is one. */
export function page (kind: ListKind, merged: Merged, offset: number, size: number): Item {
  const items = merged.items.slice(offset, offset + size)
  const result: Item = { [kind]: items }
  if (offset + size < merged.items.length) result.nextCursor = encodeCursor(kind, offset + size)
  if (merged.until !== undefined) {
    result.ttlMs = Math.max(0, merged.until - Date.now())
    result.cacheScope = merged.scope ?? 'private'
  }
  return result
}

/**
 * A URI template's fixed parts as a glob (`file:///{path}` -> `file:///*`), to tell which member's
 * template a URI comes from. Linear matching (glob.ts): the URI is the client's.
 */
export function templateGlob (template: string): string {
  return template.replace(/\{[^}]*\}/g, '*')
}
