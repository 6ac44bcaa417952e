/**
 * A virtual session's state as any gateway instance needs it to serve the session: the client's
 * `initialize` (what every member was opened with) and each member's session (its id, protocol
 * version and `initialize` answer). Kept in the shared store (Redis) when there is one, so a
 * request that reaches another instance finds the same member sessions there; on one instance
 * (memory) there is nothing to share and nothing is written.
 */
import { randomUUID } from 'node:crypto'
import type { ChangeMarks } from './list-cache.ts'
import type { MemberLink } from './member-link.ts'
import type { ClientHello, MemberInit } from './member-types.ts'

/** A small key-value store shared by the gateway's instances (Redis: lib/redis/shared-state.ts). */
export interface SharedState {
  get (key: string): Promise<string | undefined>
  set (key: string, value: string, ttlMs: number): Promise<void>
  delete (key: string): Promise<void>
}

export interface MemberSession {
  sessionId: string
  protocolVersion: string
  init: MemberInit
}

export interface VirtualSessionState {
  hello: ClientHello
  /** By member name; a member with no session (down, or never opened) is absent. */
  members: Record<string, MemberSession>
}

/**
 * How long a state outlives its last write. A session's record expires by itself (the session
 * plugin's idle timeout) and its end deletes this; the TTL only bounds what a crash leaves behind.
 */
const STATE_TTL_MS = 24 * 3_600_000

export class VirtualSessionStates {
  private readonly shared: SharedState
  private readonly server: string

  constructor (shared: SharedState, server: string) {
    this.shared = shared
    this.server = server
  }

  private key (id: string): string {
    return `vs:${this.server}:${id}`
  }

  async load (id: string): Promise<VirtualSessionState | undefined> {
    const raw = await this.shared.get(this.key(id))
    if (raw === undefined) return undefined
    try {
      const state = JSON.parse(raw) as VirtualSessionState
      return typeof state === 'object' && state !== null && typeof state.members === 'object' && typeof state.hello === 'object' ? state : undefined
    } catch {
      return undefined
    }
  }

  async save (id: string, state: VirtualSessionState): Promise<void> {
    await this.shared.set(this.key(id), JSON.stringify(state), STATE_TTL_MS)
  }

  async remove (id: string): Promise<void> {
    await this.shared.delete(this.key(id))
  }
}

/** A session's state to share: the hello, and the sessions of members another instance can use. */
export function sessionState (hello: ClientHello, links: readonly MemberLink[]): VirtualSessionState {
  const members: Record<string, MemberSession> = {}
  for (const link of links) {
    const session = link.portable ? link.session : undefined
    if (session !== undefined) members[link.name] = session
  }
  return { hello, members }
}

/** Members' list change marks in the shared store (see `ChangeMarks` in list-cache.ts). */
export function changeMarks (shared: SharedState, server: string): ChangeMarks {
  const key = (member: string): string => `lc:${server}:${member}`
  return {
    read: async (member) => await shared.get(key(member)),
    bump: async (member) => { await shared.set(key(member), randomUUID(), STATE_TTL_MS) }
  }
}

/**
 * A member session gone under session `generation`: another instance may have opened the member a
 * new one already (the store says so), which is taken up rather than a third opened (each would
 * end the one before it under the other instance).
 */
export async function retaken (states: VirtualSessionStates | undefined, id: string, link: MemberLink, generation: number): Promise<boolean> {
  if (states === undefined || !link.portable) return false
  const session = (await states.load(id).catch(() => undefined))?.members[link.name]
  return session !== undefined && link.adopt(session, generation)
}
