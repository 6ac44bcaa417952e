/**
 * A legacy HTTP+SSE upstream's channel (MCP 2024-11-05): a GET opens the server's event stream,
 * whose first `endpoint` event names the URL to POST messages to; answers and everything else
 * the server sends arrive as `message` events on that stream.
 */
import { Pool } from 'undici'
import { GatewayErrors } from '../errors.ts'
import { toMessages, type JsonRpcMessage } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { drain } from '../relay/body.ts'
import { SseParser } from '../sse/parser.ts'
import type { MessageChannel } from './channel.ts'
import { upstreamFailure } from './streamable-http.ts'

export interface LegacySseOptions {
  name: string
  /** The server's SSE endpoint, e.g. `http://127.0.0.1:4000/sse`. */
  url: string
  /** Sent with the GET and every POST: the gateway's credentials for this upstream. */
  headers?: Record<string, string>
  /** Time to connect and to receive the `endpoint` event. @default 10000 ms */
  connectTimeout?: number
  /** Time for each POST to be accepted. @default 300000 ms */
  headersTimeout?: number
  /** Most connections (each open session holds one for its stream). @default null (unlimited) */
  connections?: number | null
  keepAliveTimeout?: number
}

export class LegacySseClient {
  readonly url: URL
  readonly name: string
  private readonly options: LegacySseOptions
  private readonly pool: Pool
  private readonly headers: Record<string, string>

  constructor (options: LegacySseOptions) {
    this.options = options
    this.name = options.name
    this.url = new URL(options.url)
    this.headers = { ...options.headers, host: this.url.host }
    this.pool = new Pool(this.url.origin, {
      connections: options.connections ?? null,
      connectTimeout: options.connectTimeout ?? 10_000,
      headersTimeout: options.headersTimeout ?? 300_000,
      keepAliveTimeout: options.keepAliveTimeout ?? 4_000
    })
  }

  async open (log: Logger, label: string): Promise<MessageChannel> {
    const name = this.options.name
    const abort = new AbortController()
    const timeout = this.options.connectTimeout ?? 10_000
    const timer = setTimeout(() => abort.abort(new GatewayErrors.UPSTREAM_TIMEOUT(name)), timeout)
    // Cleared on every way out below; unref()ed so a connect in progress keeps no process alive.
    timer.unref()
    let res: Awaited<ReturnType<Pool['request']>>
    try {
      res = await this.pool.request({
        path: this.url.pathname + this.url.search,
        method: 'GET',
        headers: { ...this.headers, accept: 'text/event-stream' },
        signal: abort.signal,
        bodyTimeout: 0
      })
    } catch (err) {
      clearTimeout(timer)
      throw abort.signal.aborted ? abort.signal.reason as Error : upstreamFailure(name, err)
    }
    const type = String(res.headers['content-type'] ?? '')
    if (res.statusCode !== 200 || !type.startsWith('text/event-stream')) {
      clearTimeout(timer)
      drain(res.body)
      if (res.statusCode === 401 || res.statusCode === 403) throw new GatewayErrors.UPSTREAM_AUTH(name, res.statusCode)
      throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(name, `its SSE endpoint answered HTTP ${res.statusCode} ${type}`)
    }
    const channel = new LegacySseChannel(this, res.body, abort, log, label)
    try {
      await channel.ready
    } finally {
      clearTimeout(timer)
    }
    return channel
  }

  /** POSTs one message to the session's endpoint. */
  async post (endpoint: URL, message: JsonRpcMessage): Promise<void> {
    let res: Awaited<ReturnType<Pool['request']>>
    try {
      res = await this.pool.request({
        path: endpoint.pathname + endpoint.search,
        method: 'POST',
        headers: { ...this.headers, 'content-type': 'application/json' },
        body: JSON.stringify(message)
      })
    } catch (err) {
      throw upstreamFailure(this.options.name, err)
    }
    drain(res.body)
    if (res.statusCode >= 300) {
      if (res.statusCode === 404) throw new GatewayErrors.UPSTREAM_EXITED(this.options.name, 'it no longer knows the session')
      throw new GatewayErrors.UPSTREAM_ERROR(this.options.name, res.statusCode)
    }
  }

  async probe (): Promise<void> {
    const res = await this.pool.request({ path: this.url.pathname + this.url.search, method: 'GET', headers: { ...this.headers, accept: 'text/event-stream' } })
    res.body.destroy()
  }

  close (): Promise<void> {
    return this.pool.close()
  }

  destroy (): Promise<void> {
    return this.pool.destroy()
  }
}

class LegacySseChannel implements MessageChannel {
  onmessage: (message: JsonRpcMessage) => void = () => {}
  onclose: (reason: Error) => void = () => {}
  readonly ready: Promise<void>
  private endpoint: URL | undefined
  private readonly client: LegacySseClient
  private readonly body: NodeJS.ReadableStream & { destroy: () => void }
  private readonly abort: AbortController
  private gone: Error | undefined

  constructor (client: LegacySseClient, body: LegacySseChannel['body'], abort: AbortController, log: Logger, label: string) {
    this.client = client
    this.body = body
    this.abort = abort
    const name = client.name
    let onReady: () => void
    let onFail: (err: Error) => void
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve
      onFail = reject
    })
    const parser = new SseParser({
      onEvent: (event) => {
        if (event.event === 'endpoint') {
          let endpoint: URL
          try {
            endpoint = new URL(event.data, client.url)
          } catch {
            this.fail(new GatewayErrors.UPSTREAM_BAD_RESPONSE(name, 'its endpoint event is not a URL'))
            return
          }
          // Credentials go with every POST: never to another origin than the one configured.
          if (endpoint.origin !== client.url.origin) {
            this.fail(new GatewayErrors.UPSTREAM_BAD_RESPONSE(name, `its endpoint ${endpoint.origin} is on another origin`))
            return
          }
          this.endpoint = endpoint
          onReady()
          return
        }
        if (event.data.length === 0 || (event.event !== undefined && event.event !== 'message')) return
        let parsed: ReturnType<typeof toMessages>
        try {
          parsed = toMessages(JSON.parse(event.data))
        } catch {
          parsed = { ok: false, code: 0, message: 'not JSON' }
        }
        if (!parsed.ok) {
          log.warn({ upstream: name, upstreamSessionId: label }, 'dropped a legacy SSE event that is not JSON-RPC')
          return
        }
        for (const message of parsed.messages) this.onmessage(message)
      }
    })
    this.fail = (reason: Error): void => {
      if (this.gone !== undefined) return
      this.gone = reason
      this.abort.abort(reason)
      this.body.destroy()
      onFail(reason)
      this.onclose(reason)
    }
    body.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk)
      } catch (err) {
        this.fail(new GatewayErrors.UPSTREAM_BAD_RESPONSE(name, (err as Error).message))
      }
    })
    body.on('error', (err: Error) => this.fail(new GatewayErrors.UPSTREAM_EXITED(name, `its SSE stream broke (${err.message})`, { cause: err })))
    body.on('end', () => this.fail(new GatewayErrors.UPSTREAM_EXITED(name, 'it ended the SSE stream')))
  }

  private readonly fail: (reason: Error) => void

  async send (message: JsonRpcMessage): Promise<void> {
    if (this.gone !== undefined) throw this.gone
    await this.client.post(this.endpoint as URL, message)
  }

  async close (): Promise<void> {
    this.fail(new GatewayErrors.UPSTREAM_EXITED(this.client.name, 'the session ended'))
  }

  kill (): void {
    void this.close()
  }
}
