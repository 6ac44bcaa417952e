/**
 * The shared mode of a channel upstream (`shared: true`): one channel for every session, each
 * session's request ids and progress tokens rewritten to the channel's own on the way in and
 * restored on the way out, so no session sees another's answers.
 */
import { errorResponse, isRequest, isResponse, METHOD_NOT_FOUND, type JsonRpcMessage } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import type { DropReason } from '../relay/pending.ts'
import { forgetShared, progressToken, type ChannelSession, type SharedChannel } from './channel-session.ts'

/** Rewrites a client's message for the shared channel: its own request ids and progress tokens. */
export function toShared (shared: SharedChannel, session: ChannelSession, message: JsonRpcMessage): JsonRpcMessage {
  if (isRequest(message)) {
    const id = `g${shared.next++}`
    let params = message.params
    const token = progressToken(message)
    let own: string | undefined
    if (token !== undefined) {
      own = `g${shared.next++}`
      shared.tokens.set(own, { session, token })
      params = { ...params, _meta: { ...(params?._meta as Record<string, unknown>), progressToken: own } }
    }
    shared.requests.set(id, { session, id: message.id, token: own })
    return { ...message, id, params }
  }
  if ('method' in message && message.method === 'notifications/cancelled') {
    const target = message.params?.requestId
    for (const [own, entry] of shared.requests) {
      if (entry.session === session && entry.id === target) {
        // A cancelled request gets no answer (the spec): nothing else would free its entries.
        forgetShared(shared, own)
        return { ...message, params: { ...message.params, requestId: own } }
      }
    }
  }
  return message
}

/** A message on the shared channel, sent back to the session it belongs to (or to all). */
export function fromShared (shared: SharedChannel, message: JsonRpcMessage, name: string, log: Logger, onDrop: ((reason: DropReason) => void) | undefined): void {
  if (isResponse(message)) {
    const entry = typeof message.id === 'string' ? shared.requests.get(message.id) : undefined
    if (entry === undefined) {
      onDrop?.('stray')
      return
    }
    forgetShared(shared, message.id as string)
    entry.session.route({ ...message, id: entry.id } as JsonRpcMessage, log, name, onDrop)
    return
  }
  if (isRequest(message)) {
    // No one client to ask: the request is refused on the channel's behalf.
    void Promise.resolve(shared.channel.send(errorResponse(message.id, METHOD_NOT_FOUND, `Upstream ${name} is shared by several clients: server-to-client requests are not relayed`))).catch(() => {})
    return
  }
  if (message.method === 'notifications/progress') {
    const own = message.params?.progressToken
    const entry = typeof own === 'string' ? shared.tokens.get(own) : undefined
    if (entry !== undefined) {
      entry.session.route({ ...message, params: { ...message.params, progressToken: entry.token } }, log, name, onDrop)
    }
    return
  }
  for (const session of shared.sessions) session.outlet.push(message)
}
