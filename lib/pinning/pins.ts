/**
 * Tool pinning: the first definition of each tool an upstream lists is pinned (by hash, in the
 * store); a definition that differs later is not served until an operator approves it. Until then
 * the tool keeps its pinned definition (`mode: 'pinned'`) or is hidden and its calls refused
 * (`mode: 'hide'`). With `newTools: 'approve'`, a tool that appears after the upstream's first
 * list is hidden until approved too. Runs as two interceptors (every list answer, every call), so
 * it holds on every endpoint, transport and era; behind a virtual server a tool is pinned under
 * its member upstream and its own name there.
 */
import { LRUCache } from 'lru-cache'
import type { Interceptor, InterceptorContext } from '../interceptors/chain.ts'
import type { JsonRpcMessage, JsonRpcRequest } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { definitionDiff, definitionHash, definitionOf, withDefinition, type ToolDefinition } from './definition.ts'
import type { Pin, PinStore, Proposal, UpstreamPins } from './store.ts'

export interface ToolPinsOptions {
  store: PinStore
  mode: 'pinned' | 'hide'
  newTools: 'allow' | 'approve'
  /** Tools first seen this long after an upstream's first list count as new (its first list may take several pages). */
  baselineMs: number
  log: Logger
}

/** What happened to a pin: for the audit log and the admin feed. */
export interface PinEvent {
  kind: 'pinned' | 'changed' | 'new' | 'approved'
  upstream: string
  tool: string
  hash: string
  /** The pinned hash a change or approval replaces. */
  previous?: string | null
  approver?: string
}

/** A definition waiting for approval, as the admin API shows it. */
export interface PendingPin {
  upstream: string
  tool: string
  kind: Proposal['kind']
  seenAt: string
  pinned: Pin | null
  proposed: { hash: string, definition: ToolDefinition }
  diff: ReturnType<typeof definitionDiff>
}

type Item = Record<string, unknown>

/** An upstream's pins as one list found them, and whether that list is part of its first. */
interface Loaded {
  pins: UpstreamPins
  baseline: boolean
}

/** Most tools refused on this instance at once (a bound on what upstreams can make it hold). */
const HELD_MAX = 100_000

export class ToolPins {
  readonly options: ToolPinsOptions
  /** Told of every pin, change seen, and approval. */
  onEvent: ((event: PinEvent) => void) | undefined
  /** Since start: changed definitions seen, new tools held, approvals. */
  readonly counts = { changed: 0, new: 0, approved: 0 }
  /** Tools hidden here, `<upstream>\0<tool>`: their calls are refused until approved. */
  private readonly held = new LRUCache<string, Proposal['kind']>({ max: HELD_MAX })

  constructor (options: ToolPinsOptions) {
    this.options = options
  }

  interceptors (): Interceptor[] {
    return [
      {
        name: 'pinning:lists',
        match: { direction: 'upstream_to_client', kind: 'response', method: 'tools/list' },
        handler: async (message, ctx) => await this.list(message, ctx)
      },
      {
        name: 'pinning:calls',
        match: { direction: 'client_to_upstream', kind: 'request', method: 'tools/call' },
        handler: (message, ctx) => this.call(message as JsonRpcRequest, ctx)
      }
    ]
  }

  private call (request: JsonRpcRequest, ctx: InterceptorContext): { action: 'block', reason: string, data: Item } | undefined {
    if (this.held.size === 0) return undefined
    const name = request.params?.name
    if (typeof name !== 'string') return undefined
    const { upstream, tool } = where(ctx, name)
    const kind = this.held.get(`${upstream}\u0000${tool}`)
    if (kind === undefined) return undefined
    const reason = kind === 'new'
      ? `tool "${name}" is new on ${upstream} and waits for an operator's approval`
      : `tool "${name}" of ${upstream} changed its definition since it was approved, and waits for an operator's approval`
    return { action: 'block', reason, data: { pin: kind, upstream, tool } }
  }

  private async list (message: JsonRpcMessage, ctx: InterceptorContext): Promise<{ action: 'modify', message: JsonRpcMessage } | undefined> {
    const result = (message as { result?: Item }).result
    const tools = result?.tools
    if (result === undefined || !Array.isArray(tools)) return undefined
    const loaded = new Map<string, Loaded>()
    const kept: unknown[] = []
    let changed = false
    for (const entry of tools as unknown[]) {
      if (entry === null || typeof entry !== 'object' || typeof (entry as Item).name !== 'string') {
        kept.push(entry)
        continue
      }
      const served = await this.serve(entry as Item, ctx, loaded)
      if (served !== entry) changed = true
      if (served !== undefined) kept.push(served)
    }
    if (!changed) return undefined
    return { action: 'modify', message: { ...message, result: { ...result, tools: kept } } as JsonRpcMessage }
  }

  /** What the client is shown of one listed tool: itself, its pinned definition, or nothing. */
  private async serve (item: Item, ctx: InterceptorContext, loaded: Map<string, Loaded>): Promise<Item | undefined> {
    const exposed = item.name as string
    const { upstream, tool } = where(ctx, exposed)
    let entry = loaded.get(upstream)
    if (entry === undefined) {
      const fresh = await this.options.store.load(upstream)
      // Decided once per list: every tool of the upstream's first list belongs to its baseline.
      entry = { pins: fresh, baseline: baselineOpen(fresh, this.options.baselineMs) }
      loaded.set(upstream, entry)
    }
    const { pins, baseline } = entry
    const definition = Object.assign(definitionOf(item), { name: tool })
    const hash = definitionHash(definition)
    const key = `${upstream}\u0000${tool}`
    const pin = pins.pins.get(tool)
    const now = new Date().toISOString()
    if (pin === undefined) {
      if (this.options.newTools === 'allow' || baseline) {
        const fresh: Pin = { hash, definition, pinnedAt: now, approvedBy: null }
        if (await this.options.store.pinIfAbsent(upstream, tool, fresh)) {
          pins.pins.set(tool, fresh)
          this.onEvent?.({ kind: 'pinned', upstream, tool, hash })
        }
        return item
      }
      await this.propose(pins, upstream, tool, { hash, definition, seenAt: now, kind: 'new' }, null, ctx)
      return undefined
    }
    if (pin.hash === hash) {
      this.held.delete(key)
      return item
    }
    await this.propose(pins, upstream, tool, { hash, definition, seenAt: now, kind: 'changed' }, pin.hash, ctx)
    if (this.options.mode === 'hide') return undefined
    return Object.assign(withDefinition(item, pin.definition), { name: exposed })
  }

  /** Notes a definition waiting for approval (once per definition) and holds the tool's calls. */
  private async propose (pins: UpstreamPins, upstream: string, tool: string, proposal: Proposal, previous: string | null, ctx: InterceptorContext): Promise<void> {
    if (proposal.kind === 'new' || this.options.mode === 'hide') this.held.set(`${upstream}\u0000${tool}`, proposal.kind)
    if (pins.proposals.get(tool)?.hash === proposal.hash) return
    await this.options.store.propose(upstream, tool, proposal)
    pins.proposals.set(tool, proposal)
    this.counts[proposal.kind]++
    ctx.log.warn({ upstream, tool, hash: proposal.hash, pinned: previous }, proposal.kind === 'new' ? 'a new tool waits for approval' : 'a tool changed its definition since it was pinned; it waits for approval')
    this.onEvent?.({ kind: proposal.kind, upstream, tool, hash: proposal.hash, previous })
  }

  /** Every definition waiting for approval, with what changed. */
  async pending (): Promise<PendingPin[]> {
    const out: PendingPin[] = []
    for (const upstream of await this.options.store.upstreams()) {
      const { pins, proposals } = await this.options.store.load(upstream)
      for (const [tool, proposal] of proposals) {
        const pinned = pins.get(tool) ?? null
        // A proposal the pin caught up with (approved elsewhere while a list noted it) waits for nothing.
        if (pinned?.hash === proposal.hash) continue
        out.push({ upstream, tool, kind: proposal.kind, seenAt: proposal.seenAt, pinned, proposed: { hash: proposal.hash, definition: proposal.definition }, diff: definitionDiff(pinned?.definition ?? null, proposal.definition) })
      }
    }
    return out
  }

  /**
   * Pins the waiting definition of `tool` (on `upstream`, the member's own name behind a virtual
   * server). `hash`, when given, must be the one shown: an approval is of what the operator saw.
   */
  async approve (upstream: string, tool: string, approver: string, hash?: string): Promise<Pin | undefined> {
    const { pins, proposals } = await this.options.store.load(upstream)
    const proposal = proposals.get(tool)
    if (proposal === undefined || (hash !== undefined && proposal.hash !== hash)) return undefined
    const pin: Pin = { hash: proposal.hash, definition: proposal.definition, pinnedAt: new Date().toISOString(), approvedBy: approver }
    await this.options.store.approve(upstream, tool, pin)
    this.held.delete(`${upstream}\u0000${tool}`)
    this.counts.approved++
    this.options.log.info({ upstream, tool, hash: pin.hash, approver }, 'tool definition approved')
    this.onEvent?.({ kind: 'approved', upstream, tool, hash: pin.hash, previous: pins.get(tool)?.hash ?? null, approver })
    return pin
  }
}

/** The upstream a listed tool is pinned under, and its name there. */
function where (ctx: InterceptorContext, exposed: string): { upstream: string, tool: string } {
  const member = ctx.memberOf?.('tools', exposed)
  return member === undefined ? { upstream: ctx.upstream, tool: exposed } : { upstream: member.upstream, tool: member.name }
}

/** Whether the upstream's first list is still being taken (nothing approved yet, and recent). */
function baselineOpen ({ pins, proposals }: UpstreamPins, baselineMs: number): boolean {
  if (pins.size === 0) return proposals.size === 0
  let first = Infinity
  for (const pin of pins.values()) {
    if (pin.approvedBy !== null) return false
    first = Math.min(first, Date.parse(pin.pinnedAt))
  }
  return Date.now() - first < baselineMs
}
