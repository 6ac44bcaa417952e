/**
 * One virtual session: the message channel a client's session talks to, holding one session with
 * each member (member-link.ts). `initialize` opens them all at once, each bounded by its own
 * timeout; lists are fanned out in parallel and merged (catalog.ts); calls, reads and completions
 * go to the member that has the name or URI, under its own name and an id of its own; member
 * notifications and requests come back with the client's names and ids. A member that is down is
 * left out of lists and retried in the background; the client hears `list_changed` when it goes
 * and when it comes back.
 */
import { randomUUID } from 'node:crypto'
import { GatewayErrors, toJsonRpcError } from '../errors.ts'
import { isRequest, isResponse, type JsonRpcId, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import type { MessageChannel } from '../upstream/channel.ts'
import { rawOf, withIdReplaced, withRaw } from '../upstream/events.ts'
import { decodeCursor, KIND, LIST_KINDS, page, type Item, type ListKind, type Merged } from './catalog.ts'
import { negotiatedVersion, mergedInitialize } from './initialize.ts'
import { MemberLink } from './member-link.ts'
import type { ClientHello, LinkWatcher, MemberSpec } from './member-types.ts'
import { memberFailure, MemberRetries } from './member-retries.ts'
import { MemberAsks } from './member-asks.ts'
import { isSessionGone, mergedList } from './member-lists.ts'
import { exposeUri, resolveUri } from './resource-routing.ts'
import type { VirtualServer } from './virtual-server.ts'
import { retaken, sessionState, type VirtualSessionState } from './virtual-state.ts'

type Result = Record<string, unknown>

export class VirtualChannel implements MessageChannel, LinkWatcher {
  onmessage: (message: JsonRpcMessage) => void = () => {}
  onclose: (reason: Error) => void = () => {}
  readonly server: VirtualServer
  links: MemberLink[] = []
  readonly log: Logger
  private opened: Promise<void> | undefined
  /** Every member's first open has settled: requests need not wait on `opened` (a turn each). */
  private ready = false
  /** The last merged list of each kind, what names and URIs are routed by; merges under way. */
  readonly merged = new Map<ListKind, Merged>()
  readonly merging = new Map<ListKind, Promise<Merged>>()
  /** Every exposed name seen this session, by kind: a call to a name whose member is down says so. */
  readonly known = new Map<string, number>()
  /** Client request id -> the member and the id it was sent under (for cancellation). */
  private readonly forwarded = new Map<JsonRpcId, { link: MemberLink, id: string }>()
  private readonly cancelled = new Set<JsonRpcId>()
  /** Members' server-to-client requests waiting for the client's answer. */
  private readonly asks: MemberAsks
  readonly retries: MemberRetries
  private closed = false
  /** No member could be opened: the session ends once `initialize` is answered. */
  private failed = false
  /** Whose private lists this session may be served: its principal, else itself. */
  readonly viewer: string
  private readonly id: string
  private hello: ClientHello | undefined
  /** Ended for everyone (not only let go of here): members' sessions end, the shared state goes. */
  private terminated = false

  constructor (server: VirtualServer, log: Logger, id: string, principal: string | undefined, adopted?: VirtualSessionState) {
    this.server = server
    this.log = log
    this.id = id
    this.viewer = principal === undefined ? `session:${randomUUID()}` : `principal:${principal}`
    this.retries = new MemberRetries(server, log)
    this.asks = new MemberAsks(server.name, log, (message) => { this.emit(message) })
    if (adopted !== undefined) this.adopt(adopted)
  }

  /** Members' sessions taken up from the store where they can be, opened here where not. */
  private adopt (state: VirtualSessionState): void {
    this.hello = state.hello
    this.links = this.server.members.map((spec) => this.link(spec, state.hello))
    this.opened = Promise.resolve()
    this.ready = true
    for (const link of this.links) {
      const session = state.members[link.name]
      if (session !== undefined && link.portable) link.adopt(session)
      else link.open().catch(() => { this.retries.schedule(link) })
    }
  }

  /** On a shared store, member streams are held only while the session's own stream is here. */
  private link (spec: MemberSpec, hello: ClientHello): MemberLink {
    return new MemberLink(spec, hello, this, this.log, this.server.maxBytes, this.server.states === undefined)
  }

  /** What another instance needs to serve this session, written to the shared store (if any). */
  private save (): void {
    const states = this.server.states
    if (states === undefined || this.hello === undefined || this.closed) return
    const failed = (err: unknown): void => { this.log.warn({ upstream: this.server.name, err }, 'virtual server: the session\'s member sessions could not be shared') }
    states.save(this.id, sessionState(this.hello, this.links)).catch(failed)
  }

  streaming (open: boolean): void {
    if (this.server.states !== undefined) for (const link of this.links) link.stream(open)
  }

  terminate (): void { this.terminated = true }

  send (message: JsonRpcMessage): void {
    if (this.closed) throw new GatewayErrors.UPSTREAM_EXITED(this.server.name, 'the virtual session ended')
    void this.handle(message).catch((err: unknown) => {
      this.log.warn({ upstream: this.server.name, err }, 'virtual server: a message could not be handled')
    })
  }

  async close (): Promise<void> { this.shutdown() }
  kill (): void { this.shutdown() }

  private shutdown (): void {
    if (this.closed) return
    this.closed = true
    this.retries.stop()
    // On a shared store, a session let go of here lives on: its portable members' sessions stay.
    const end = this.server.states === undefined || this.terminated
    for (const link of this.links) link.close(end || !link.portable)
    if (this.terminated) this.server.states?.remove(this.id).catch(() => {})
    this.onclose(new GatewayErrors.UPSTREAM_EXITED(this.server.name, 'the virtual session ended'))
  }

  private emit (message: JsonRpcMessage): void { if (!this.closed) this.onmessage(message) }

  private async handle (message: JsonRpcMessage): Promise<void> {
    if (isResponse(message)) return await this.asks.answered(message)
    if (!isRequest(message)) return await this.clientNotification(message)
    let response: JsonRpcResponse
    try {
      response = await this.answer(message)
    } catch (err) {
      const coded = (err as { code?: string }).code?.startsWith('MCP_GW_') === true
      if (!coded && (err as Error).name !== 'AbortError') this.log.warn({ upstream: this.server.name, method: message.method, err }, 'virtual server: request failed')
      response = toJsonRpcError(err as Error, message.id).body
    }
    // A cancelled request gets no answer (the spec).
    if (this.cancelled.delete(message.id)) return
    this.emit(response)
    if (this.failed) this.shutdown()
  }

  private async answer (request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const result = (value: Result): JsonRpcResponse => ({ jsonrpc: '2.0', id: request.id, result: value })
    if (request.method === 'initialize') return result(await this.initialize(request))
    if (!this.ready) await this.opened
    const params = request.params ?? {}
    switch (request.method) {
      case 'ping': return result({})
      case 'tools/list': return result(await this.listPage('tools', params.cursor))
      case 'prompts/list': return result(await this.listPage('prompts', params.cursor))
      case 'resources/list': return result(await this.listPage('resources', params.cursor))
      case 'resources/templates/list': return result(await this.listPage('resourceTemplates', params.cursor))
      case 'tools/call': return await this.byName('tools', request, false)
      case 'prompts/get': return await this.byName('prompts', request, true)
      case 'resources/read':
      case 'resources/subscribe':
      case 'resources/unsubscribe': return await this.byUri(request)
      case 'completion/complete': return await this.complete(request)
      case 'logging/setLevel': return result(await this.fanOut(request, 'logging'))
      default: throw new GatewayErrors.VIRTUAL_NOT_ROUTED(this.server.name, request.method)
    }
  }

  private async initialize (request: JsonRpcRequest): Promise<Result> {
    if (this.opened !== undefined) throw new GatewayErrors.ALREADY_INITIALIZED()
    const params = request.params ?? {}
    const hello: ClientHello = {
      protocolVersion: negotiatedVersion(params.protocolVersion),
      capabilities: typeof params.capabilities === 'object' && params.capabilities !== null ? params.capabilities as Result : {},
      clientInfo: typeof params.clientInfo === 'object' && params.clientInfo !== null ? params.clientInfo as Result : { name: 'unknown', version: '0' }
    }
    this.hello = hello
    this.links = this.server.members.map((spec) => this.link(spec, hello))
    this.opened = Promise.allSettled(this.links.map(async (link) => { await link.open() })).then(() => { this.ready = true })
    await this.opened
    this.save()
    const open = this.links.filter((link) => link.state === 'open')
    if (open.length === 0) {
      // Closed once the client has its answer (closing first would fail the answer instead).
      this.failed = true
      throw new GatewayErrors.NO_MEMBER_OPEN(this.server.name, this.links.map((link) => `${link.name}: ${link.reason?.message ?? 'closed'}`).join('; '))
    }
    for (const link of this.links) {
      if (link.state !== 'open') {
        this.log.warn({ upstream: this.server.name, member: link.name, reason: link.reason?.message }, 'virtual server: a member is left out for now')
        this.retries.schedule(link)
      }
    }
    return mergedInitialize(this.server.name, hello.protocolVersion, open)
  }

  // --- lists -------------------------------------------------------------------------------

  private async listPage (kind: ListKind, cursor: unknown): Promise<Result> {
    let offset = 0
    if (cursor !== undefined) {
      const decoded = decodeCursor(kind, cursor)
      if (decoded === undefined) throw new GatewayErrors.INVALID_CURSOR(KIND[kind].method)
      offset = decoded
    }
    // Later pages read the list the first page came from, when this instance has it.
    const merged = offset > 0 ? this.merged.get(kind) ?? await this.mergedList(kind) : await this.mergedList(kind)
    return page(kind, merged, offset, this.server.pageSize)
  }

  async mergedList (kind: ListKind): Promise<Merged> { return await mergedList(this, kind) }

  // --- routing -----------------------------------------------------------------------------

  /** The entry an exposed name stands for, from the last merged list or a fresh one. */
  async find (kind: ListKind, exposed: string): Promise<{ link: MemberLink, own: string }> {
    // The last merged list is good until a member says it changed (which drops it); a name it
    // lacks is looked for once more (the change may have been heard by another instance).
    const last = this.merged.get(kind)
    const entry = last?.byExposed.get(exposed) ?? (await this.mergedList(kind)).byExposed.get(exposed)
    if (entry !== undefined) return { link: this.links[entry.member] as MemberLink, own: entry.own }
    // A name of a member that is down now: say that, not "unknown".
    const member = this.known.get(`${kind}\u0000${exposed}`)
    const link = member === undefined ? undefined : this.links[member]
    if (link !== undefined && link.state !== 'open') throw new GatewayErrors.MEMBER_DOWN(link.name, this.server.name, link.reason?.message ?? 'not open')
    throw new GatewayErrors.VIRTUAL_UNKNOWN(this.server.name, kind === 'tools' ? 'tool' : kind === 'prompts' ? 'prompt' : 'resource template', exposed)
  }

  private async byName (kind: 'tools' | 'prompts', request: JsonRpcRequest, idempotent: boolean): Promise<JsonRpcResponse> {
    const params = request.params ?? {}
    if (typeof params.name !== 'string') throw new GatewayErrors.VIRTUAL_UNKNOWN(this.server.name, kind === 'tools' ? 'tool' : 'prompt', 'without a name')
    // The last merged list has it (the common case): no await on the way.
    const hit = this.merged.get(kind)?.byExposed.get(params.name)
    const { link, own } = hit === undefined ? await this.find(kind, params.name) : { link: this.links[hit.member] as MemberLink, own: hit.own }
    return await this.forward(link, { ...request, params: { ...params, name: own } }, idempotent)
  }

  private async byUri (request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const params = request.params ?? {}
    if (typeof params.uri !== 'string') throw new GatewayErrors.VIRTUAL_UNKNOWN(this.server.name, 'resource', 'without a uri')
    const { link, own } = await resolveUri(this, params.uri)
    const response = await this.forward(link, { ...request, params: { ...params, uri: own } }, true)
    if (request.method !== 'resources/read' || !('result' in response) || !Array.isArray(response.result.contents)) return response
    const contents = (response.result.contents as Item[]).map((content) => typeof content.uri === 'string' ? { ...content, uri: exposeUri(this, link, content.uri) } : content)
    return { ...response, result: { ...response.result, contents } }
  }

  private async complete (request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const params = request.params ?? {}
    const ref = params.ref as { type?: unknown, name?: unknown, uri?: unknown } | undefined
    if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
      const { link, own } = await this.find('prompts', ref.name)
      return await this.forward(link, { ...request, params: { ...params, ref: { ...ref, name: own } } }, true)
    }
    if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
      const listed = (this.merged.get('resourceTemplates') ?? await this.mergedList('resourceTemplates')).byExposed.get(ref.uri)
      const { link, own } = listed !== undefined ? { link: this.links[listed.member] as MemberLink, own: listed.own } : await resolveUri(this, ref.uri)
      return await this.forward(link, { ...request, params: { ...params, ref: { ...ref, uri: own } } }, true)
    }
    throw new GatewayErrors.VIRTUAL_UNKNOWN(this.server.name, 'completion reference', JSON.stringify(ref ?? null).slice(0, 200))
  }

  /** A request every member that offers `capability` gets; the client gets an empty result. */
  private async fanOut (request: JsonRpcRequest, capability: string): Promise<Result> {
    await Promise.all(this.links.filter((link) => link.offers(capability)).map(async (link) => {
      try {
        await link.request(request.method, request.params, AbortSignal.timeout(link.spec.timeout))
      } catch (err) {
        this.log.warn({ upstream: this.server.name, member: link.name, method: request.method, err }, 'virtual server: a member did not take a fanned-out request')
      }
    }))
    return {}
  }

  /**
   * Sends a client's request to one member. A member that forgot its session gets a new one at
   * once; requests that are safe to repeat are sent again, others are answered with a coded error
   * saying they were not made.
   */
  private async forward (link: MemberLink, request: JsonRpcRequest, idempotent: boolean): Promise<JsonRpcResponse> {
    if (link.state !== 'open') await this.usable(link)
    const generation = link.generation
    const clientId = request.id
    try {
      return await this.sendTo(link, request, clientId)
    } catch (err) {
      if (!isSessionGone(err)) throw memberFailure(link, err, generation)
      await this.reopen(link, generation)
      if (!idempotent) throw new GatewayErrors.MEMBER_SESSION_REOPENED(link.name, this.server.name)
      const reopened = link.generation
      try {
        return await this.sendTo(link, request, clientId)
      } catch (again) {
        throw memberFailure(link, again, reopened)
      }
    }
  }

  /** `request` is sent under the member's id (it is changed); its answer comes back under `clientId`. */
  private async sendTo (link: MemberLink, request: JsonRpcRequest, clientId: JsonRpcId): Promise<JsonRpcResponse> {
    try {
      const response = await link.forward(request, (id) => { this.forwarded.set(clientId, { link, id }) })
      const renamed = { ...response, id: clientId }
      // The member's bytes, with the client's id in place of the member's, when that is sure.
      const raw = rawOf(response)
      const patched = raw === undefined ? undefined : withIdReplaced(raw, response.id as string, clientId)
      return patched === undefined ? renamed : withRaw(renamed, patched)
    } finally {
      this.forwarded.delete(clientId)
    }
  }

  /** A new member session after the old one was forgotten; a failure makes the member lost. */
  async reopen (link: MemberLink, generation: number): Promise<void> {
    try {
      if (await retaken(this.server.states, this.id, link, generation)) return
      await link.reopen(generation)
    } catch (err) {
      this.lost(link, link.reason ?? err as Error)
      throw err
    }
  }

  private async usable (link: MemberLink): Promise<void> {
    if (link.state === 'opening') {
      await link.open()
      return
    }
    this.retries.kick(link)
    throw new GatewayErrors.MEMBER_DOWN(link.name, this.server.name, link.reason?.message ?? 'not open')
  }

  // --- the client's notifications and answers ------------------------------------------------

  private async clientNotification (message: JsonRpcNotification): Promise<void> {
    if (message.method === 'notifications/initialized') return
    await this.opened
    if (message.method === 'notifications/cancelled') {
      const requestId = message.params?.requestId as JsonRpcId | undefined
      const target = requestId === undefined ? undefined : this.forwarded.get(requestId)
      if (target === undefined || requestId === undefined) return
      this.cancelled.add(requestId)
      target.link.abandon(target.id)
      await target.link.notify({ ...message, params: { ...message.params, requestId: target.id } }).catch(() => {})
      return
    }
    // roots/list_changed and the like: every member may care.
    await Promise.all(this.links.filter((link) => link.state === 'open').map(async (link) => { await link.notify(message).catch(() => {}) }))
  }

  // --- what members send, and members coming and going ---------------------------------------

  message (link: MemberLink, message: JsonRpcNotification | JsonRpcRequest): void {
    if (isRequest(message)) {
      this.asks.ask(link, message)
      return
    }
    const changed = LIST_KINDS.filter((kind) => KIND[kind].changed === message.method)
    if (changed.length > 0) {
      this.server.cache.invalidate(link.name, changed)
      for (const kind of changed) this.merged.delete(kind)
      this.emit(message)
      return
    }
    if (message.method === 'notifications/resources/updated' && typeof message.params?.uri === 'string') {
      this.emit({ ...message, params: { ...message.params, uri: exposeUri(this, link, message.params.uri) } })
      return
    }
    if (message.method === 'notifications/cancelled') {
      this.asks.withdrawn(link, message)
      return
    }
    this.emit(message)
  }

  lost (link: MemberLink, reason: Error): void {
    if (this.closed) return
    if (this.retries.has(link)) return
    this.log.warn({ upstream: this.server.name, member: link.name, reason: reason.message }, 'virtual server: a member is gone; retrying in the background')
    this.changed(link)
    this.retries.schedule(link)
  }

  reopened (link: MemberLink): void {
    if (this.closed) return
    this.save()
    this.changed(link)
  }

  /** The member's part of the merged lists changed (it went, or came back): the client re-lists. */
  private changed (link: MemberLink): void {
    // What it had asked the client is moot now: its session is another.
    this.asks.forget(link)
    const methods = new Set<string>()
    const kinds: ListKind[] = []
    for (const kind of LIST_KINDS) {
      if (link.init?.capabilities[KIND[kind].capability] === undefined) continue
      this.merged.delete(kind)
      kinds.push(kind)
      methods.add(KIND[kind].changed)
    }
    // A member that went (or came back) may list other things now than what was kept.
    this.server.cache.invalidate(link.name, kinds)
    for (const method of methods) this.emit({ jsonrpc: '2.0', method })
  }
}
