/**
 * Where held calls and their decisions live. A held call stays on the instance that received it
 * (its client's connection is there); what is shared is its description, for whoever lists the
 * queue, and its decision, which reaches the holding instance through the store whichever
 * instance the approver used. The first decision wins: an approval racing a denial or the
 * timeout is decided once, by the store.
 */
import type { MemberName } from '../upstream/types.ts'

export interface HeldCall {
  id: string
  /** Epoch ms. */
  heldAt: number
  expiresAt: number
  /** The policy rule that asked for approval. */
  rule: string
  /** Globs of the admin names that may decide; null: any admin. */
  approvers: string[] | null
  principal: string | null
  session: string | null
  /** The client's JSON-RPC id for the call (a session's `notifications/cancelled` names it). */
  requestId: string | number
  upstream: string
  member: MemberName | null
  tool: string
  /** The call's arguments, secrets redacted. */
  arguments: unknown
  argumentsDigest: string
}

export type ApprovalOutcome = 'approved' | 'denied' | 'timeout' | 'cancelled'

export interface ApprovalDecision {
  outcome: ApprovalOutcome
  /** The approver (admin name); null for a timeout or a client that left. */
  by: string | null
  reason: string | null
  at: number
}

export type ApprovalStoreEvent =
  | { kind: 'held', call: HeldCall }
  | { kind: 'decided', id: string, decision: ApprovalDecision }
  /** A session's client cancelled a request, on some instance: whichever holds it ends it. */
  | { kind: 'cancelled', session: string, requestId: string | number }

export interface ApprovalStore {
  put (call: HeldCall): Promise<void>
  /** Held calls not yet decided, oldest first. */
  list (): Promise<HeldCall[]>
  get (id: string): Promise<HeldCall | undefined>
  /** Records the decision unless one is there already: whether this one won. */
  decide (id: string, decision: ApprovalDecision): Promise<boolean>
  decision (id: string): Promise<ApprovalDecision | undefined>
  remove (id: string): Promise<void>
  /** Tells every instance that a session's client cancelled a request. */
  cancel (session: string, requestId: string | number): Promise<void>
  /** Told of every call held and every decision, on any instance sharing the store. */
  subscribe (listener: (event: ApprovalStoreEvent) => void): Promise<void>
  close (): Promise<void>
}

export class MemoryApprovalStore implements ApprovalStore {
  private readonly calls = new Map<string, HeldCall>()
  private readonly decisions = new Map<string, ApprovalDecision>()
  private readonly listeners: Array<(event: ApprovalStoreEvent) => void> = []

  // Bounded by what waits (lib/approval/approvals.ts holds at most so many calls).
  async put (call: HeldCall): Promise<void> {
    this.calls.set(call.id, call)
    this.emit({ kind: 'held', call })
  }

  async list (): Promise<HeldCall[]> {
    return [...this.calls.values()].filter((call) => !this.decisions.has(call.id))
  }

  async get (id: string): Promise<HeldCall | undefined> {
    return this.calls.get(id)
  }

  async decide (id: string, decision: ApprovalDecision): Promise<boolean> {
    if (!this.calls.has(id) || this.decisions.has(id)) return false
    this.decisions.set(id, decision)
    this.emit({ kind: 'decided', id, decision })
    return true
  }

  async decision (id: string): Promise<ApprovalDecision | undefined> {
    return this.decisions.get(id)
  }

  async remove (id: string): Promise<void> {
    this.calls.delete(id)
    this.decisions.delete(id)
  }

  async cancel (session: string, requestId: string | number): Promise<void> {
    this.emit({ kind: 'cancelled', session, requestId })
  }

  async subscribe (listener: (event: ApprovalStoreEvent) => void): Promise<void> {
    this.listeners.push(listener)
  }

  async close (): Promise<void> {
    this.listeners.length = 0
  }

  private emit (event: ApprovalStoreEvent): void {
    // After the caller's await, as a shared store's message would come.
    queueMicrotask(() => { for (const listener of this.listeners) listener(event) })
  }
}
