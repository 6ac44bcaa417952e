/**
 * A Streamable HTTP upstream of either protocol era, as the gateway's exchange sees it. Requests
 * of the upstream's own era go as they are; the era bridges, named for which way they go, do the
 * rest:
 * - a 2025 client's session with a 2026-07-28 upstream: a channel upstream of
 *   `ModernUpstreamForLegacyClient` channels (modern-upstream-for-legacy-clients.ts), one per
 *   client session, which give the client what the new revision dropped;
 * - a 2026 client's request to a 2025-era upstream: `LegacyUpstreamForModernClients`
 *   (legacy-upstream-for-modern-clients.ts), which holds upstream sessions on the stateless
 *   clients' behalf (legacy-upstream-sessions.ts).
 *
 * `protocol: 'auto'` asks the upstream once with `server/discover`: a result offering 2026-07-28
 * makes it modern; anything else (an error, a 4xx, silence past the probe timeout) makes it a
 * 2025-era upstream. The verdict is kept (a timeout's for a minute, then asked again).
 */
import type { DropReason } from '../relay/pending.ts'
import type { Logger } from '../logger.ts'
import { isRequest } from '../jsonrpc.ts'
import { HEADER, STATELESS_VERSION } from '../protocol.ts'
import { ChannelUpstream } from './channel-upstream.ts'
import { ModernUpstreamForLegacyClient, modernRequest, readAnswer, type DiscoverResult } from './modern-upstream-for-legacy-clients.ts'
import { LegacyUpstreamForModernClients } from './legacy-upstream-for-modern-clients.ts'
import type { StreamableHttpUpstream } from './streamable-http.ts'
import type { UpstreamAnswer, UpstreamEvents } from './events.ts'
import { refusedReply } from './http-answer.ts'
import type { Upstream, UpstreamSend, UpstreamSessionRequest } from './types.ts'
import { GatewayErrors } from '../errors.ts'
import type { Caller } from '../upstream-auth/credentials.ts'

export type ProtocolEra = '2025' | '2026'
export type ProtocolSetting = 'auto' | ProtocolEra

const PROBE_TIMEOUT_MS = 3000
const UNSURE_TTL_MS = 60_000
const DISCOVER_TTL_MS = 30_000
const GATEWAY_INFO = { name: 'fastify-mcp-gateway', version: '0.1.0' }

/** A request of a session (it names one, or opens one): sessions are 2025's. */
function sessionful (req: UpstreamSend): boolean {
  return req.headers[HEADER.sessionId] !== undefined || req.messages.some((message) => isRequest(message) && message.method === 'initialize')
}

export class DualEraUpstream implements Upstream {
  readonly name: string
  readonly kind = 'streamable-http' as const
  private readonly raw: StreamableHttpUpstream
  private readonly setting: ProtocolSetting
  private readonly bridge: ChannelUpstream
  /** Stateless (2026) clients of a 2025-era upstream. */
  private readonly legacy: LegacyUpstreamForModernClients
  private readonly log: Logger
  private verdict: { era: Promise<ProtocolEra>, until: number } | undefined
  private discovered: { result: Promise<DiscoverResult>, until: number } | undefined

  constructor (raw: StreamableHttpUpstream, setting: ProtocolSetting, log: Logger) {
    this.raw = raw
    this.name = raw.name
    this.setting = setting
    this.log = log
    this.bridge = new ChannelUpstream({
      name: raw.name,
      kind: 'sse',
      // A bridged session costs the gateway a little memory and the upstream nothing.
      maxChannels: Number.MAX_SAFE_INTEGER,
      log,
      open: async () => new ModernUpstreamForLegacyClient(raw, async (caller) => await this.discover(caller), log),
      probe: async () => await raw.probe()
    })
    this.legacy = new LegacyUpstreamForModernClients(raw, log)
  }

  watchDrops (onDrop: (reason: DropReason) => void): void {
    // Only the bridge is a channel: the upstream's own answers are checked by each exchange.
    this.bridge.watchDrops(onDrop)
  }

  /** The upstream's era, as configured or as found out. */
  async findOutEra (): Promise<ProtocolEra> {
    if (this.setting !== 'auto') return this.setting
    const now = Date.now()
    if (this.verdict === undefined || this.verdict.until < now) {
      const era = this.findEra()
      this.verdict = { era, until: Number.POSITIVE_INFINITY }
      era.catch(() => { this.verdict = undefined })
    }
    return await this.verdict.era
  }

  private async findEra (): Promise<ProtocolEra> {
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), PROBE_TIMEOUT_MS)
    // Cleared in finally; unref()ed so a probe in progress keeps no process alive.
    timer.unref()
    try {
      const result = await this.askDiscover(abort.signal)
      const modern = Array.isArray(result.supportedVersions) && result.supportedVersions.includes(STATELESS_VERSION)
      this.log.info({ upstream: this.name, era: modern ? '2026' : '2025' }, 'upstream protocol era found')
      if (modern) this.discovered = { result: Promise.resolve(result), until: Date.now() + DISCOVER_TTL_MS }
      this.known = modern ? '2026' : '2025'
      return this.known
    } catch (err) {
      if ((err as { code?: string }).code === 'MCP_GW_UPSTREAM_UNAVAILABLE') throw err
      if (abort.signal.aborted && this.verdict !== undefined) {
        // Silence is no verdict: ask again later, and route by each request's own era meanwhile.
        this.verdict.until = Date.now() + UNSURE_TTL_MS
        return '2025'
      }
      this.log.info({ upstream: this.name, era: '2025' }, 'upstream protocol era found (no server/discover)')
      this.known = '2025'
      return '2025'
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * The upstream's `server/discover` result (kept a little while: every bridged session asks),
   * asked for `caller` when the upstream's `auth` acts for the user.
   */
  async discover (caller?: Caller): Promise<DiscoverResult> {
    const now = Date.now()
    if (this.discovered !== undefined && this.discovered.until >= now) return await this.discovered.result
    // Asked once at a time per caller: a failure is that caller's own (a consent prompt holds
    // their sign-in link), never handed to another who joined; a success serves everyone.
    const key = caller?.id ?? ''
    let asking = this.discovering.get(key)
    if (asking === undefined) {
      asking = this.askDiscover(undefined, caller)
      this.discovering.set(key, asking)
      asking.then((result) => {
        this.discovered = { result: Promise.resolve(result), until: Date.now() + DISCOVER_TTL_MS }
      }, () => {}).finally(() => this.discovering.delete(key))
    }
    return await asking
  }

  private readonly discovering = new Map<string, Promise<DiscoverResult>>()

  private async askDiscover (signal?: AbortSignal, caller?: Caller): Promise<DiscoverResult> {
    const { headers, body } = modernRequest({ jsonrpc: '2.0', id: 'gw-discover', method: 'server/discover' }, {
      'io.modelcontextprotocol/protocolVersion': STATELESS_VERSION,
      'io.modelcontextprotocol/clientCapabilities': {},
      'io.modelcontextprotocol/clientInfo': GATEWAY_INFO
    })
    const res = await this.raw.request({ method: 'POST', headers, body, signal, caller })
    let result: DiscoverResult | undefined
    await readAnswer(res as never, (message) => {
      if ('result' in message) result = message.result as DiscoverResult
    })
    if (result === undefined) throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(this.name, `server/discover answered HTTP ${res.status} without a result`)
    return result
  }

  send (req: UpstreamSend): Promise<UpstreamAnswer> {
    const known = this.setting === 'auto' ? this.known : this.setting
    // The common case, on every request: no extra promise on the way.
    if (known !== undefined) return this.routeSend(req, known)
    return this.guessed(sessionful(req) ? '2025' : '2026', (era) => this.routeSend(req, era))
  }

  /**
   * Era not known yet: the probe starts, and meanwhile the request goes where its own era points
   * (no waiting on the probe). Only a refusal that speaks of the other era waits for the verdict
   * and, if it says so, sends the request the other way.
   */
  private async guessed<T> (guess: ProtocolEra, attempt: (era: ProtocolEra) => Promise<T>): Promise<T> {
    const probing = this.findOutEra()
    probing.catch(() => {})
    try {
      return await attempt(guess)
    } catch (err) {
      const reply = refusedReply(err)
      if (reply === undefined || !speaksOtherEra(reply.body, guess)) throw err
      let era: ProtocolEra
      try {
        era = await probing
      } catch {
        throw err
      }
      if (era === guess) throw err
      return await attempt(era)
    }
  }

  private routeSend (req: UpstreamSend, era: ProtocolEra): Promise<UpstreamAnswer> {
    if (era === '2025') return sessionful(req) ? this.raw.send(req) : this.legacy.send(req)
    return sessionful(req) ? this.bridge.send(req) : this.raw.send(req)
  }

  /** A session's own stream: with a 2026 upstream, sessions are the bridge's. */
  listen (req: UpstreamSessionRequest): Promise<UpstreamEvents> {
    const known = this.era
    // A session is 2025's until the verdict says otherwise.
    if (known === undefined) return this.guessed('2025', (era) => era === '2026' ? this.bridge.listen(req) : this.raw.listen(req))
    return known === '2026' ? this.bridge.listen(req) : this.raw.listen(req)
  }

  end (req: UpstreamSessionRequest): Promise<void> {
    const known = this.era
    if (known === undefined) return this.guessed('2025', (era) => era === '2026' ? this.bridge.end(req) : this.raw.end(req))
    return known === '2026' ? this.bridge.end(req) : this.raw.end(req)
  }

  private known: ProtocolEra | undefined

  /** The upstream's era as far as it is known (configured, or found). */
  get era (): ProtocolEra | undefined {
    return this.setting === 'auto' ? this.known : this.setting
  }

  async probe (): Promise<void> {
    await this.raw.probe()
  }

  async close (): Promise<void> {
    await this.bridge.close()
    await this.legacy.close()
    await this.raw.close()
  }

  async destroy (): Promise<void> {
    this.legacy.destroy()
    await this.bridge.destroy()
    await this.raw.destroy()
  }
}

/**
 * Whether a refusal means the upstream speaks the other era: a modern server refusing a 2025
 * request (unsupported protocol version, unknown method, header checks), or a 2025 server
 * refusing a sessionless request (no session: "Mcp-Session-Id header is required").
 */
function speaksOtherEra (raw: Buffer, guess: ProtocolEra): boolean {
  let code: unknown
  let message = ''
  try {
    const body = JSON.parse(raw.toString('utf8')) as { error?: { code?: unknown, message?: unknown } }
    code = body.error?.code
    message = String(body.error?.message ?? '')
  } catch {
    return guess === '2026'
  }
  if (guess === '2025') return code === -32022 || code === -32601 || code === -32020
  return code === -32000 || code === -32600 || /session|initializ/i.test(message)
}
