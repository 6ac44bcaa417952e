/**
 * Members' lists, kept across the virtual server's sessions: until the member says the list
 * changed (`list_changed` from any of its sessions), or `cacheTtl` passes. What is kept is the
 * member's own list, before any principal's filtering: the gateway's auth rules apply to the
 * merged answer on its way out, never to what is stored here.
 */
import type { Item, ListKind } from './catalog.ts'
import type { ClientHello } from './member-link.ts'

interface Kept {
  items: Item[]
  until: number
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

  constructor (ttl: number) {
    this.ttl = ttl
  }

  /**
   * `audience`: what the member's lists may depend on besides the member (the client's declared
   * capabilities: a server may offer a tool only to clients that can answer it).
   */
  async get (member: string, audience: string, kind: ListKind, fetch: () => Promise<Item[]>): Promise<Item[]> {
    const key = `${member}\u0000${kind}\u0000${audience}`
    const kept = this.kept.get(key)
    if (kept !== undefined && kept.until > Date.now()) {
      this.hits++
      return kept.items
    }
    this.misses++
    const generation = this.generations.get(member) ?? 0
    const items = await fetch()
    if (this.ttl > 0 && (this.generations.get(member) ?? 0) === generation) {
      this.kept.delete(key)
      this.kept.set(key, { items, until: Date.now() + this.ttl })
      if (this.kept.size > MAX_KEPT) this.kept.delete(this.kept.keys().next().value as string)
    }
    return items
  }

  /** A member's lists of these kinds changed (or the member went away): fetch them again. */
  invalidate (member: string, kinds: readonly ListKind[]): void {
    this.generations.set(member, (this.generations.get(member) ?? 0) + 1)
    for (const kind of kinds) {
      const head = `${member}\u0000${kind}\u0000`
      for (const key of this.kept.keys()) if (key.startsWith(head)) this.kept.delete(key)
    }
  }
}
