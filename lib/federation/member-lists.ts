/**
 * Members' lists: one member's whole list of one kind, page after page, within its timeout; and
 * every member's, in parallel, merged for a virtual session.
 */
import { GatewayErrors } from '../errors.ts'
import type { JsonRpcResponse } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { KIND, mergeLists, type Item, type ListKind, type Merged } from './catalog.ts'
import { mergedFreshness, NOTHING_LISTED, type Fetched, type Served } from './list-cache.ts'
import type { MemberLink } from './member-link.ts'
import type { VirtualChannel } from './virtual-channel.ts'

export function isSessionGone (err: unknown): boolean {
  return (err as { code?: string }).code === 'MCP_GW_UPSTREAM_SESSION_GONE'
}

/** Most pages read from one member for one list. */
const MAX_MEMBER_PAGES = 100

/**
 * The list, and what the member said of its freshness (a 2026-07-28 member's `ttlMs` and
 * `cacheScope`, through the era bridge): the shortest of its pages, the most private.
 */
export async function fetchAll (link: MemberLink, kind: ListKind, log: Logger): Promise<Fetched> {
  const fetched: Fetched = { items: [], ttlMs: undefined, scope: undefined }
  const items = fetched.items
  const signal = AbortSignal.timeout(link.spec.timeout)
  let cursor: string | undefined
  for (let pages = 0; pages < MAX_MEMBER_PAGES; pages++) {
    let response: JsonRpcResponse
    try {
      response = await link.request(KIND[kind].method, cursor === undefined ? undefined : { cursor }, signal)
    } catch (err) {
      if (signal.aborted) throw new GatewayErrors.UPSTREAM_TIMEOUT(link.name)
      throw err
    }
    if (!('result' in response)) throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(link.name, `${KIND[kind].method} failed: ${response.error.message}`)
    const list = response.result[kind]
    if (!Array.isArray(list)) throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(link.name, `${KIND[kind].method} has no ${kind} array`)
    for (const item of list) if (typeof item === 'object' && item !== null && !Array.isArray(item)) items.push(item as Item)
    const { ttlMs, cacheScope } = response.result
    if (typeof ttlMs === 'number' && ttlMs >= 0) fetched.ttlMs = Math.min(fetched.ttlMs ?? ttlMs, ttlMs)
    if (cacheScope === 'private' || cacheScope === 'public') fetched.scope = fetched.scope === 'private' ? 'private' : cacheScope
    const next = response.result.nextCursor
    if (typeof next !== 'string' || next.length === 0) return fetched
    cursor = next
  }
  log.warn({ upstream: link.spec.server, member: link.name, kind }, `virtual server: a member's list has more than ${MAX_MEMBER_PAGES} pages; the rest is left out`)
  return fetched
}

/**
 * Every member's list of a kind, fetched (or kept) in parallel and merged for the session; lookups
 * at the same time share one fan-out (a burst of first calls would each make one).
 */
export async function mergedList (channel: VirtualChannel, kind: ListKind): Promise<Merged> {
  let merging = channel.merging.get(kind)
  if (merging === undefined) {
    merging = mergeNow(channel, kind).finally(() => { channel.merging.delete(kind) })
    channel.merging.set(kind, merging)
  }
  return await merging
}

async function mergeNow (channel: VirtualChannel, kind: ListKind): Promise<Merged> {
  const failed = { any: false }
  const lists = await Promise.all(channel.links.map(async (link) => await memberList(channel, link, kind, failed)))
  const merged = Object.assign(mergeLists(kind, channel.server.rules, channel.server.catalog[kind], lists.map((list) => list?.items)), mergedFreshness(lists))
  // A list a member failed to give (not one that is down: it says when it is back) is asked
  // for again by the next lookup instead of routing the session by what is missing.
  if (failed.any) channel.merged.delete(kind)
  else channel.merged.set(kind, merged)
  for (const entry of merged.byExposed.values()) channel.known.set(`${kind}\u0000${entry.exposed}`, entry.member)
  if (kind === 'tools' || kind === 'prompts') {
    // What interceptors and auth read (the last merge of any session: names are the server's).
    const exposed = new Map<string, { upstream: string, name: string }>()
    for (const entry of merged.byExposed.values()) exposed.set(entry.exposed, { upstream: (channel.links[entry.member] as MemberLink).name, name: entry.own })
    channel.server.exposed[kind] = exposed
  }
  return merged
}

async function memberList (channel: VirtualChannel, link: MemberLink, kind: ListKind, failed: { any: boolean }): Promise<Served | undefined> {
  if (link.state === 'down') {
    channel.retries.kick(link)
    return undefined
  }
  if (link.state === 'opening') await link.open().catch(() => {})
  if (!link.offers(KIND[kind].capability)) return NOTHING_LISTED
  const cached = async (): Promise<Served> => await channel.server.cache.get(link.name, link.audience, kind, channel.viewer, async () => await fetchAll(link, kind, channel.log))
  const generation = link.generation
  try {
    return await cached().catch(async (err: unknown) => {
      // The member forgot its session: a new one, and the list asked for once more.
      if (!isSessionGone(err)) throw err
      await channel.reopen(link, generation)
      return await cached()
    })
  } catch (err) {
    channel.log.warn({ upstream: channel.server.name, member: link.name, kind, err }, 'virtual server: a member\'s list is left out')
    if (link.state === 'open') failed.any = true
    return undefined
  }
}
