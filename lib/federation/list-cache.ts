/**
 * Members' lists, kept across the virtual server's sessions: until the member says the list
 * changed (`list_changed` from any of its sessions), or `cacheTtl` passes, or (a 2026-07-28
 * member) its own `ttlMs` does, if shorter. A list its member called `private` is kept per
 * principal (per virtual session when auth is off); any other is shared by every session of the
 * same audience. What is kept is the member's own list, before any principal's filtering: the
 * gateway's auth rules apply to the merged answer on its way out, never to what is stored here.
 */
import type { Item, ListKind } from './catalog.ts'
import type { ClientHello } from './member-types.ts'

export type CacheScope = 'public' | 'private'

/** A member's list as fetched, with what the member said of its freshness. */
export interface Fetched {
  items: Item[]
  /** The member's `ttlMs` (2026-07-28); undefined: it said nothing. */
  ttlMs: number | undefined
  scope: CacheScope | undefined
}

/** A member's list as served: how long it stays as it is here, and for whom. */
export interface Served {
  items: Item[]
  /** How much longer this list would be served from here (0: not kept). */
  ttlMs: number
  /** `private` unless the member said `public` (a 2025 member says nothing: assume the worst). */
  scope: CacheScope
}

interface Kept {
  items: Item[]
  until: number
  scope: CacheScope
  /** The member's change mark when it was fetched (several instances): another mark, another list. */
  mark: string | undefined
}

/**
 * Change marks in the instances' shared store: a member's list change seen by one instance (on
 * the member stream it holds) makes every instance's kept lists of that member stale.
 */
export interface ChangeMarks {
  read (member: string): Promise<string | undefined>
  bump (member: string): Promise<void>
}

/** Client capabilities a server may vary its lists by (others are not part of the cache key). */
const LISTED_BY = ['elicitation', 'sampling', 'roots', 'tasks'] as const

/**
 * A bounded key for what a member's lists may depend on besides the member: the protocol version
 * and which of the known capabilities (and their first-level parts) the client declared. The
 * client's own JSON is never the key: it could be anything, of any size.
 */
export function audienceOf (hello: ClientHello): string {
  const parts = [hello.protocolVersion.slice(0, 16)]
  for (const name of LISTED_BY) {
    const value = hello.capabilities[name]
    if (value === undefined) continue
    const inner = typeof value === 'object' && value !== null ? Object.keys(value).filter((key) => key.length <= 32).sort().slice(0, 8) : []
    parts.push(`${name}(${inner.join(',')})`)
  }
  return parts.join(';')
}

/** Most lists kept (members x kinds x audiences); the oldest go first. */
const MAX_KEPT = 1000

export class ListCache {
  private readonly ttl: number
  private readonly kept = new Map<string, Kept>()
  /** Bumped by each invalidation: a fetch that started before one is not kept. */
  private readonly generations = new Map<string, number>()
  /** Lists fetched from members (a miss) and served from here (a hit). */
  hits = 0
  misses = 0

  private readonly marks: ChangeMarks | undefined

  constructor (ttl: number, marks?: ChangeMarks) {
    this.ttl = ttl
    this.marks = marks
  }

  /**
   * `audience`: what the member's lists may depend on besides the member (the client's declared
   * capabilities: a server may offer a tool only to clients that can answer it). `viewer`: whose
   * private lists may be served (the principal, else the virtual session).
   */
  async get (member: string, audience: string, kind: ListKind, viewer: string, fetch: () => Promise<Fetched>): Promise<Served> {
    const shared = `${member}\u0000${kind}\u0000${audience}`
    const own = `${shared}\u0000${viewer}`
    // Unreadable marks (the store away) keep nothing: a list is fetched, never served stale.
    const mark = this.marks === undefined ? undefined : await this.marks.read(member).catch(() => null)
    const now = Date.now()
    const kept = mark === null ? undefined : this.fresh(shared, now, mark) ?? this.fresh(own, now, mark)
    if (kept !== undefined) {
      this.hits++
      return { items: kept.items, ttlMs: kept.until - now, scope: kept.scope }
    }
    this.misses++
    const generation = this.generations.get(member) ?? 0
    const fetched = await fetch()
    const scope = fetched.scope ?? 'private'
    const keep = Math.min(this.ttl, fetched.ttlMs ?? this.ttl)
    if (keep <= 0 || mark === null || (this.generations.get(member) ?? 0) !== generation) return { items: fetched.items, ttlMs: 0, scope }
    const key = fetched.scope === 'private' ? own : shared
    this.kept.delete(key)
    this.kept.set(key, { items: fetched.items, until: Date.now() + keep, scope, mark })
    if (this.kept.size > MAX_KEPT) this.kept.delete(this.kept.keys().next().value as string)
    return { items: fetched.items, ttlMs: keep, scope }
  }

  private fresh (key: string, now: number, mark: string | undefined): Kept | undefined {
    const kept = this.kept.get(key)
    return kept !== undefined && kept.until > now && kept.mark === mark ? kept : undefined
  }

  /** A member's lists of these kinds changed (or the member went away): fetch them again. */
  invalidate (member: string, kinds: readonly ListKind[]): void {
    this.generations.set(member, (this.generations.get(member) ?? 0) + 1)
    // Best effort: an instance that misses it still has `cacheTtl` as its bound.
    this.marks?.bump(member).catch(() => {})
    for (const kind of kinds) {
      const head = `${member}\u0000${kind}\u0000`
      for (const key of this.kept.keys()) if (key.startsWith(head)) this.kept.delete(key)
    }
  }
}

/** A member that offers no list of a kind: nothing to keep, nothing to shorten the merged list's life. */
export const NOTHING_LISTED: Served = { items: [], ttlMs: Number.POSITIVE_INFINITY, scope: 'public' }

/**
 * What is true of a merged list: it lasts as long as its shortest-lived part, and is as private as
 * its most private one; a member left out (down, or its list failed) makes it last no time at all,
 * since the member's part comes back when it does.
 */
export function mergedFreshness (parts: ReadonlyArray<Served | undefined>): { until: number, scope: CacheScope } {
  let ttlMs = Number.POSITIVE_INFINITY
  let scope: CacheScope = 'public'
  for (const part of parts) {
    ttlMs = Math.min(ttlMs, part?.ttlMs ?? 0)
    if (part === undefined || part.scope === 'private') scope = 'private'
  }
  return { until: Date.now() + (Number.isFinite(ttlMs) ? ttlMs : 0), scope }
}
