#!/usr/bin/env node
/**
 * An MCP server whose tools each play one exchange of the pipeline's contract test, the same
 * over every transport: stdio (run as a script), Streamable HTTP with SSE or JSON answers, and
 * legacy HTTP+SSE (both in test/helpers/scripted-http.ts). Plain JavaScript with no
 * dependencies, so a stdio child starts in milliseconds. Tools (`tools/call` by name):
 *   answer    the result at once
 *   progress  two progress notifications, then the result
 *   ask       a `roots/list` request to the client; the result once the client answered it
 *   hang      one progress notification (the call is under way), then nothing until cancelled
 *   crash     the peer dies mid-call (`crash()` of the transport)
 *   stray     a response to no request, the result, then the same result again
 *   cancels   the cancellations this peer heard, as JSON text
 */
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const text = (value) => ({ content: [{ type: 'text', text: value }] })

/**
 * One peer's behaviour. `send(message, forId)` sends to the client on the answer of request
 * `forId` (a transport without per-request answers ignores it); `crash()` kills the transport.
 */
export function scriptedPeer (send, crash) {
  const cancels = []
  /** Server-to-client requests waiting for the client's answer: their id -> the call's id. */
  const asked = new Map()
  let asks = 0
  const result = (id, value) => send({ jsonrpc: '2.0', id, result: text(value) }, id)
  return {
    cancels,
    handle (message) {
      if (message.method === 'initialize') {
        send({ jsonrpc: '2.0', id: message.id, result: { protocolVersion: message.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'scripted', version: '0' } } }, message.id)
        return
      }
      if (message.method === 'notifications/cancelled') {
        cancels.push({ requestId: message.params.requestId, reason: message.params.reason })
        return
      }
      if (message.method === undefined && message.id !== undefined) {
        // The client's answer to `ask`.
        const call = asked.get(message.id)
        if (call === undefined) return
        asked.delete(message.id)
        result(call, `roots: ${JSON.stringify(message.result)}`)
        return
      }
      if (message.id === undefined) return
      if (message.method === 'ping') {
        send({ jsonrpc: '2.0', id: message.id, result: {} }, message.id)
        return
      }
      if (message.method !== 'tools/call') {
        send({ jsonrpc: '2.0', id: message.id, error: { code: -32601, message: 'Method not found' } }, message.id)
        return
      }
      const id = message.id
      const token = message.params?._meta?.progressToken ?? `token-${id}`
      const progress = (n) => send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: n, total: 2 } }, id)
      switch (message.params?.name) {
        case 'answer': result(id, 'answered'); break
        case 'progress': progress(1); progress(2); result(id, 'after progress'); break
        case 'ask': {
          const askId = `srv-${++asks}`
          asked.set(askId, id)
          send({ jsonrpc: '2.0', id: askId, method: 'roots/list' }, id)
          break
        }
        case 'hang': progress(1); break
        case 'crash': progress(1); setTimeout(crash, 20); break
        case 'stray':
          send({ jsonrpc: '2.0', id: 'nobody-asked', result: text('stray') }, id)
          result(id, 'the one answer')
          result(id, 'a duplicate')
          break
        case 'cancels': result(id, JSON.stringify(cancels)); break
        default: send({ jsonrpc: '2.0', id, error: { code: -32602, message: 'Unknown tool' } }, id)
      }
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const peer = scriptedPeer((message) => process.stdout.write(`${JSON.stringify(message)}\n`), () => process.exit(1))
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() !== '') peer.handle(JSON.parse(line))
  })
}
