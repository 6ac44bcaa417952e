/**
 * A small adapter that lets the MCP SDK's `Client` talk to the gateway over its WebSocket
 * transport: `mcp` subprotocol, one JSON-RPC message per text frame. On `ws`, so it runs on Node
 * 20 and can send headers (an `Authorization` for the gateway's auth) that a browser WebSocket
 * cannot.
 *
 *   const client = new Client({ name: 'app', version: '1.0.0' })
 *   await client.connect(new GatewayWebSocketTransport('ws://127.0.0.1:3000/mcp/ws'))
 */
import WebSocket from 'ws'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

export interface GatewayWebSocketOptions {
  /** Headers for the upgrade request (e.g. `authorization`). */
  headers?: Record<string, string>
}

export class GatewayWebSocketTransport implements Transport {
  onmessage?: (message: JSONRPCMessage) => void
  onclose?: () => void
  onerror?: (error: Error) => void
  /** Why the gateway closed the socket, once it has. */
  closeCode: number | undefined
  closeReason: string | undefined
  private socket: WebSocket | undefined
  private readonly url: string
  private readonly options: GatewayWebSocketOptions

  constructor (url: string, options: GatewayWebSocketOptions = {}) {
    this.url = url
    this.options = options
  }

  /** The underlying socket (tests use it to pause reading or to go silent). */
  get raw (): WebSocket | undefined {
    return this.socket
  }

  async start (): Promise<void> {
    const socket = new WebSocket(this.url, 'mcp', { headers: this.options.headers })
    this.socket = socket
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve)
      socket.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket upgrade refused: HTTP ${res.statusCode ?? 0}`)))
      socket.once('error', reject)
    })
    socket.on('message', (data) => {
      try {
        this.onmessage?.(JSON.parse(String(data)) as JSONRPCMessage)
      } catch (err) {
        this.onerror?.(err as Error)
      }
    })
    socket.on('error', (err) => this.onerror?.(err))
    socket.on('close', (code, reason) => {
      this.closeCode = code
      this.closeReason = reason.toString()
      this.onclose?.()
    })
  }

  async send (message: JSONRPCMessage): Promise<void> {
    const socket = this.socket
    if (socket === undefined || socket.readyState !== WebSocket.OPEN) throw new Error('WebSocket is not open')
    await new Promise<void>((resolve, reject) => socket.send(JSON.stringify(message), (err) => err === undefined || err === null ? resolve() : reject(err)))
  }

  async close (): Promise<void> {
    const socket = this.socket
    if (socket === undefined || socket.readyState === WebSocket.CLOSED) return
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve())
      socket.close(1000, 'client done')
    })
  }
}
