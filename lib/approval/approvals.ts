/**
 * Human approval of tool calls: a call a policy `approve` rule holds waits here, before it leaves
 * the gateway, until an admin approves or denies it (admin API, console), its time runs out, or its
 * client leaves. The call waits on the instance that received it; its description goes to the
 * store, so the queue shows it on every instance, and the decision comes back through the store
 * from whichever instance the approver used.
 */
import { randomUUID } from 'node:crypto'
import type { Abort } from '../abort.ts'
import { argumentsDigest, type Redactor } from '../audit/record.ts'
import { globMatcher } from '../glob.ts'
import type { Logger } from '../logger.ts'
import type { ApprovalDecision, ApprovalOutcome, ApprovalStore, ApprovalStoreEvent, HeldCall } from './store.ts'

export interface ApprovalsOptions {
  store: ApprovalStore
  redactor: Redactor
  log: Logger
}

/** What is held: the call's who and what (its id and times are given here). */
export type HoldRequest = Omit<HeldCall, 'id' | 'heldAt' | 'expiresAt' | 'arguments' | 'argumentsDigest'>

export type DecideResult = 'decided' | 'unknown' | 'not-allowed' | 'already-decided'

interface Waiter {
  resolve: (decision: ApprovalDecision) => void
  timer: NodeJS.Timeout
  key: string | undefined
  principal: string
}

/** A session's request, as the key its held call is found by (`1` and `"1"` are different ids). */
const sessionRequest = (session: string, requestId: string | number): string => `${session}\u0000${typeof requestId}:${String(requestId)}`

/** Calls held elsewhere remembered for cancellations (past it, the oldest are forgotten). */
const HELD_ANYWHERE_KEPT = 100_000

/** Most calls held on one instance at once, and per principal. */
const HELD_LIMIT = 10_000
const HELD_PER_PRINCIPAL = 100

export class Approvals {
  readonly store: ApprovalStore
  /** Told of every call held and decided, on any instance: the admin feed. */
  readonly listeners: Array<(event: ApprovalStoreEvent) => void> = []
  /** Since start, on this instance: calls held, and how they ended. */
  readonly counts: Record<'held' | ApprovalOutcome, number> = { held: 0, approved: 0, denied: 0, timeout: 0, cancelled: 0 }
  private readonly options: ApprovalsOptions
  private readonly waiting = new Map<string, Waiter>()
  /** Calls held per principal (`(anonymous)` without inbound auth). */
  private readonly perPrincipal = new Map<string, number>()
  /** Held calls of sessions by `<session>\0<request id>`, for the session's cancellations. */
  private readonly bySessionRequest = new Map<string, string>()
  /**
   * Calls held on any instance, by `<session>\0<request id>` (from the store's events, bounded):
   * a cancellation is passed on only for one of them, never for every client notification.
   */
  private readonly heldAnywhere = new Map<string, string>()
  /** The same, by call id (to forget one when it is decided). */
  private readonly heldAnywhereById = new Map<string, string>()
  private started: Promise<void> | undefined

  constructor (options: ApprovalsOptions) {
    this.options = options
    this.store = options.store
  }

  /** Listens to the store (once; a failed start is tried again by the next call). */
  start (): Promise<void> {
    this.started ??= this.store.subscribe((event) => { this.heard(event) }).catch((err: unknown) => {
      this.started = undefined
      throw err
    })
    return this.started
  }

  /** Holds a call until it is decided; resolves with the decision (never rejects once held). */
  async hold (request: HoldRequest, args: unknown, timeoutMs: number, signal: Abort | undefined): Promise<ApprovalDecision> {
    await this.start()
    // Each held call keeps its client's request open: bounded here, and per principal, so one
    // client cannot take every place.
    if (this.waiting.size >= HELD_LIMIT) throw new Error(`${HELD_LIMIT} calls wait for approval on this instance already`)
    const principal = request.principal ?? '(anonymous)'
    if ((this.perPrincipal.get(principal) ?? 0) >= HELD_PER_PRINCIPAL) throw new Error(`${principal} has ${HELD_PER_PRINCIPAL} calls waiting for approval already`)
    const heldAt = Date.now()
    const call: HeldCall = { ...request, id: randomUUID(), heldAt, expiresAt: heldAt + timeoutMs, arguments: this.options.redactor.redact(args), argumentsDigest: argumentsDigest(args) }
    const key = call.session === null ? undefined : sessionRequest(call.session, call.requestId)
    const decided = new Promise<ApprovalDecision>((resolve) => {
      const timer = setTimeout(() => { void this.end(call.id, 'timeout') }, timeoutMs)
      timer.unref()
      this.waiting.set(call.id, { resolve, timer, key, principal })
      this.perPrincipal.set(principal, (this.perPrincipal.get(principal) ?? 0) + 1)
      if (key !== undefined) this.bySessionRequest.set(key, call.id)
    })
    try {
      await this.store.put(call)
    } catch (err) {
      this.forget(call.id)
      throw err
    }
    this.counts.held++
    this.options.log.info({ approval: call.id, rule: call.rule, principal: call.principal, upstream: call.upstream, tool: call.tool }, 'tool call held for approval')
    const onAbort = (): void => { void this.end(call.id, 'cancelled') }
    if (signal?.aborted === true) onAbort()
    else signal?.once('abort', onAbort)
    const decision = await decided
    signal?.off('abort', onAbort)
    this.counts[decision.outcome]++
    this.options.log.info({ approval: call.id, outcome: decision.outcome, by: decision.by }, 'approval decided')
    await this.store.remove(call.id).catch((err: unknown) => { this.options.log.warn({ err, approval: call.id }, 'a decided approval could not be removed from the store') })
    return decision
  }

  /** An admin's decision on a held call. */
  async decide (id: string, approve: boolean, by: string, reason?: string): Promise<DecideResult> {
    const call = await this.store.get(id)
    if (call === undefined) return 'unknown'
    if (Array.isArray(call.approvers) && !globMatcher(call.approvers).test(by)) return 'not-allowed'
    const decision: ApprovalDecision = { outcome: approve ? 'approved' : 'denied', by, reason: reason ?? null, at: Date.now() }
    return await this.store.decide(id, decision) ? 'decided' : 'already-decided'
  }

  /**
   * A session's client cancelled one of its requests: held here, it ends; else the other
   * instances are told (the cancellation may have come to another instance than the call).
   */
  cancelled (session: string | undefined, requestId: unknown): void {
    if (session === undefined || (typeof requestId !== 'string' && typeof requestId !== 'number')) return
    if (this.endHeld(session, requestId)) return
    if (!this.heldAnywhere.has(sessionRequest(session, requestId))) return
    this.store.cancel(session, requestId).catch((err: unknown) => { this.options.log.warn({ err, session }, 'a cancellation could not be passed to the other instances') })
  }

  private endHeld (session: string, requestId: string | number): boolean {
    const id = this.bySessionRequest.get(sessionRequest(session, requestId))
    if (id === undefined) return false
    void this.end(id, 'cancelled')
    return true
  }

  async pending (): Promise<HeldCall[]> {
    return await this.store.list()
  }

  /** The holder's own end (time up, client gone): decided once, by the store, like any other. */
  private async end (id: string, outcome: 'timeout' | 'cancelled'): Promise<void> {
    const own: ApprovalDecision = { outcome, by: null, reason: null, at: Date.now() }
    try {
      if (await this.store.decide(id, own)) {
        this.settle(id, own)
        return
      }
      // Someone decided first: that decision stands (its message may still be on its way). None
      // found (the store lost the call): ours ends it, never a wait with no end.
      this.settle(id, await this.store.decision(id) ?? own)
    } catch (err) {
      // The store is away: the call is not sent without a decision.
      this.options.log.warn({ err, approval: id }, 'the approval store could not be reached; the held call ends')
      this.settle(id, own)
    }
  }

  private heard (event: ApprovalStoreEvent): void {
    if (event.kind === 'cancelled') {
      this.endHeld(event.session, event.requestId)
      return
    }
    if (event.kind === 'held' && event.call.session !== null) this.noteHeld(event.call.id, sessionRequest(event.call.session, event.call.requestId))
    if (event.kind === 'decided') {
      const key = this.heldAnywhereById.get(event.id)
      if (key !== undefined) {
        this.heldAnywhereById.delete(event.id)
        this.heldAnywhere.delete(key)
      }
      this.settle(event.id, event.decision)
    }
    for (const listener of this.listeners) listener(event)
  }

  private noteHeld (id: string, key: string): void {
    if (this.heldAnywhere.size >= HELD_ANYWHERE_KEPT) {
      const [oldestKey, oldestId] = this.heldAnywhere.entries().next().value as [string, string]
      this.heldAnywhere.delete(oldestKey)
      this.heldAnywhereById.delete(oldestId)
    }
    this.heldAnywhere.set(key, id)
    this.heldAnywhereById.set(id, key)
  }

  private settle (id: string, decision: ApprovalDecision): void {
    const waiter = this.waiting.get(id)
    if (waiter === undefined) return
    this.forget(id)
    waiter.resolve(decision)
  }

  private forget (id: string): void {
    const waiter = this.waiting.get(id)
    if (waiter === undefined) return
    clearTimeout(waiter.timer)
    this.waiting.delete(id)
    // Only its own entry: another call of the session may have reused the request id since.
    if (waiter.key !== undefined && this.bySessionRequest.get(waiter.key) === id) this.bySessionRequest.delete(waiter.key)
    const left = (this.perPrincipal.get(waiter.principal) ?? 1) - 1
    if (left > 0) this.perPrincipal.set(waiter.principal, left)
    else this.perPrincipal.delete(waiter.principal)
  }

  /** Calls held here end as cancelled (the gateway closes): none is sent without a decision. */
  async cancelAll (): Promise<void> {
    await Promise.all([...this.waiting.keys()].map(async (id) => { await this.end(id, 'cancelled') }))
  }

  async close (): Promise<void> {
    await this.cancelAll()
    await this.store.close()
  }
}
