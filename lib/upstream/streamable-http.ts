/**
 * HTTP client for one Streamable HTTP upstream: a keep-alive undici pool per upstream origin,
 * timeouts that fit MCP, abort propagation, and undici's errors turned into gateway errors.
 */
import { Pool } from 'undici'
import { untilAborted } from '../abort.ts'
import { GatewayErrors } from '../errors.ts'
import { drain } from '../relay/body.ts'
import type { UpstreamCredentials } from '../upstream-auth/credentials.ts'
import type { UpstreamAnswer, UpstreamEvents } from './events.ts'
import { endOverHttp, listenOverHttp, sendOverHttp } from './http-answer.ts'
import type { Upstream, UpstreamHttpRequest, UpstreamHttpResponse, UpstreamSend, UpstreamSessionRequest } from './types.ts'

export type { UpstreamHttpRequest, UpstreamHttpResponse } from './types.ts'

export interface StreamableHttpUpstreamOptions {
  /** Name used in logs, metrics and error messages. */
  name: string
  /** The upstream's MCP endpoint, e.g. `http://127.0.0.1:4000/mcp`. */
  url: string
  /**
   * Headers added to every upstream request: the gateway's own credentials for this upstream.
   * The client's `Authorization` is never forwarded.
   * @default {}
   */
  headers?: Record<string, string>
  /**
   * Most connections to the upstream. Every open SSE stream (a GET stream, or a POST answered with
   * SSE) holds one connection for its whole life, so a cap here is also a cap on open streams.
   * @default null (unlimited, one per concurrent request or stream; idle ones are reused)
   */
  connections?: number | null
  /**
   * Time to establish a TCP connection.
   * @default 10000 ms
   */
  connectTimeout?: number
  /**
   * Time from sending a request to the upstream's response headers. An upstream answering in JSON
   * sends headers only with the result, so this is also the longest tool call in JSON mode.
   * @default 300000 ms
   */
  headersTimeout?: number
  /**
   * Longest silence between two body chunks of a POST response. GET streams, which may idle for
   * hours, have none.
   * @default 300000 ms
   */
  bodyTimeout?: number
  /**
   * How long an idle keep-alive connection is kept.
   * @default 4000 ms (undici's default)
   */
  keepAliveTimeout?: number
  /**
   * Requests sent on one connection before the first answer (HTTP/1.1 pipelining). 1 by default:
   * a pipelined request waits behind every answer before it, and MCP answers can take minutes.
   * @default 1
   */
  pipelining?: number
  /**
   * Offer HTTP/2 to an `https:` upstream (ALPN; it falls back to HTTP/1.1 when the upstream does
   * not take it). One HTTP/2 connection then carries every request and stream, so `connections`
   * no longer caps open streams. Cleartext (h2c) upstreams are not supported by undici.
   * @default false
   */
  http2?: boolean
  /** The upstream's `auth` mode beyond static headers: an `authorization` for each request. */
  credentials?: UpstreamCredentials
}

export const UPSTREAM_DEFAULTS = {
  connections: null,
  connectTimeout: 10_000,
  headersTimeout: 300_000,
  bodyTimeout: 300_000,
  keepAliveTimeout: 4_000,
  pipelining: 1
} as const

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])

/** Turns an undici failure into the gateway's coded error, keeping the original as `cause`. */
export function upstreamFailure (name: string, err: unknown): Error {
  const code = (err as { code?: string } | null)?.code
  if (code !== undefined && TIMEOUT_CODES.has(code)) return new GatewayErrors.UPSTREAM_TIMEOUT(name, { cause: err })
  return new GatewayErrors.UPSTREAM_UNAVAILABLE(name, { cause: err })
}

export class StreamableHttpUpstream implements Upstream {
  readonly name: string
  readonly kind = 'streamable-http' as const
  readonly url: URL
  private readonly path: string
  private readonly extraHeaders: Record<string, string>
  private readonly pool: Pool
  private readonly headersTimeout: number
  private readonly bodyTimeout: number
  private readonly credentials: UpstreamCredentials | undefined

  constructor (options: StreamableHttpUpstreamOptions) {
    this.name = options.name
    this.url = new URL(options.url)
    this.path = this.url.pathname + this.url.search
    this.extraHeaders = { ...options.headers }
    this.headersTimeout = options.headersTimeout ?? UPSTREAM_DEFAULTS.headersTimeout
    this.bodyTimeout = options.bodyTimeout ?? UPSTREAM_DEFAULTS.bodyTimeout
    this.credentials = options.credentials
    this.pool = new Pool(this.url.origin, {
      connections: options.connections ?? UPSTREAM_DEFAULTS.connections,
      connectTimeout: options.connectTimeout ?? UPSTREAM_DEFAULTS.connectTimeout,
      keepAliveTimeout: options.keepAliveTimeout ?? UPSTREAM_DEFAULTS.keepAliveTimeout,
      pipelining: options.pipelining ?? UPSTREAM_DEFAULTS.pipelining,
      allowH2: options.http2 === true,
      headersTimeout: this.headersTimeout,
      bodyTimeout: this.bodyTimeout
    })
  }

  /** A client's messages as one POST; the HTTP answer read into messages. */
  send (req: UpstreamSend): Promise<UpstreamAnswer> {
    return sendOverHttp(this, req)
  }

  /** The session's GET stream, as events. */
  listen (req: UpstreamSessionRequest): Promise<UpstreamEvents> {
    return listenOverHttp(this, req)
  }

  /** DELETE of the session. */
  end (req: UpstreamSessionRequest): Promise<void> {
    return endOverHttp(this, req)
  }

  /**
   * Sends one HTTP request upstream. Rejects with a gateway error, or with the abort reason. With
   * `credentials`, a 401 to the token sent drops it and the request goes once more with a new one.
   */
  async request (req: UpstreamHttpRequest): Promise<UpstreamHttpResponse> {
    // Copied key by key: a spread of header objects (dashed keys) takes V8's slow path, ~1 µs per request.
    const headers: Record<string, string> = {}
    for (const name in req.headers) headers[name] = req.headers[name] as string
    for (const name in this.extraHeaders) headers[name] = this.extraHeaders[name] as string
    headers.host = this.url.host
    const credentials = req.anonymous === true ? undefined : this.credentials
    if (credentials === undefined) return await this.exchange(headers, req)
    const first = credentials.authorization(req.caller)
    const authorization = headers.authorization = typeof first === 'string' ? first : await untilAborted(first, req.signal)
    const res = await this.exchange(headers, req)
    if (res.status !== 401) return res
    drain(res.body)
    // The second refusal of a fresh token is final: the client hears UPSTREAM_AUTH (or, for
    // per-user OAuth, a new consent prompt), never the upstream's challenge.
    if (!await credentials.rejected(req.caller, authorization, false)) return res
    const again = credentials.authorization(req.caller)
    const retried = headers.authorization = typeof again === 'string' ? again : await untilAborted(again, req.signal)
    const second = await this.exchange(headers, req)
    if (second.status === 401) {
      drain(second.body)
      await credentials.rejected(req.caller, retried, true)
    }
    return second
  }

  private async exchange (headers: Record<string, string>, req: UpstreamHttpRequest): Promise<UpstreamHttpResponse> {
    try {
      const res = await this.pool.request({
        path: this.path,
        method: req.method,
        headers,
        body: req.body ?? null,
        signal: req.signal,
        headersTimeout: this.headersTimeout,
        bodyTimeout: req.longLived === true ? 0 : this.bodyTimeout
      })
      return { status: res.statusCode, headers: res.headers as UpstreamHttpResponse['headers'], body: res.body }
    } catch (err) {
      if (req.signal?.aborted === true) throw err
      throw upstreamFailure(this.name, err)
    }
  }

  /** Resolves when the upstream answers HTTP at all (any status); rejects when it cannot be reached. */
  async probe (): Promise<void> {
    const res = await this.request({ method: 'GET', headers: { accept: 'text/event-stream' }, anonymous: true })
    res.body.on('error', () => {}).resume()
  }

  close (): Promise<void> {
    return this.pool.close()
  }

  /** Ends every connection at once, in-flight requests included (shutdown past its deadline). */
  destroy (): Promise<void> {
    return this.pool.destroy()
  }
}

