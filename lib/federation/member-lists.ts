/** One member's whole list of one kind, page after page, within the member's timeout. */
import { GatewayErrors } from '../errors.ts'
import type { JsonRpcResponse } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { KIND, type Item, type ListKind } from './catalog.ts'
import type { Fetched } from './list-cache.ts'
import type { MemberLink } from './member-link.ts'

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
