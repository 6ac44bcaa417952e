/**
 * The JSON body sink: an upstream's whole answer to one POST, made into the client's JSON body.
 * Responses to nothing the POST asked (strays, duplicates) are dropped and counted, interceptors
 * run, a request the answer left out gets a coded error, and answers the gateway made for part of
 * a batch go first. The upstream's own bytes go out when nothing changed them.
 */
import { GatewayErrors, toJsonRpcError } from '../errors.ts'
import { errorResponse, type JsonRpcMessage } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import type { MessageFilter } from '../interceptors/apply.ts'
import type { UpstreamAnswer } from '../upstream/events.ts'
import { dropUnasked, unansweredIds } from './messages.ts'
import type { PendingRequests } from './pending.ts'

export interface JsonAnswerOptions {
  answer: Extract<UpstreamAnswer, { kind: 'single' }>
  /** The POST's requests; emptied: every one is answered by the body. */
  pending: PendingRequests
  filter: MessageFilter | undefined
  /** Answers made here (blocked or mocked requests of a batch), sent first. */
  local: JsonRpcMessage[]
  /** Sees each message that goes to the client. */
  onMessage: ((message: JsonRpcMessage) => void) | undefined
  upstream: string
  log: Logger
}

/**
 * The messages for the client (none when nothing is left: all strays, nothing asked), and the
 * upstream's own bytes when they can go out as they came.
 */
export async function jsonAnswer (options: JsonAnswerOptions): Promise<{ messages: JsonRpcMessage[], raw: Buffer | undefined }> {
  const { answer, pending, filter, local, onMessage } = options
  const cleaned = dropUnasked(answer.messages, pending)
  let messages = cleaned.messages
  let changed = cleaned.changed
  if (changed) options.log.warn({ upstream: options.upstream }, 'dropped upstream responses to no pending request')
  if (filter !== undefined) {
    const filtered = filter(messages)
    const out = filtered instanceof Promise ? await filtered : filtered
    if (out.changed) messages = out.messages
    changed ||= out.changed
  }
  // Every request gets one answer, as on the stream paths: one the upstream left out gets an error.
  const missing = unansweredIds(messages, pending)
  if (missing.length > 0) {
    options.log.warn({ upstream: options.upstream, unanswered: missing.length }, 'upstream JSON answer left requests unanswered')
    const { code, message } = toJsonRpcError(new GatewayErrors.UPSTREAM_BAD_RESPONSE(options.upstream, 'its answer has no response to this request')).body.error
    messages = [...messages, ...missing.map((id) => errorResponse(id, code, message))]
    changed = true
  }
  pending.clear()
  if (local.length > 0) messages = [...local, ...messages]
  if (onMessage !== undefined) for (const message of messages) onMessage(message)
  return { messages, raw: !changed && local.length === 0 && messages.length > 0 ? answer.raw : undefined }
}
