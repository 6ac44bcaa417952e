/**
 * A consent prompt in each era's own terms, answered in band (HTTP 200, one answer per request)
 * so SDK clients see it as MCP, not as a transport failure:
 * - 2025-11-25: the `URLElicitationRequired` error (-32042), its `data.elicitations` holding the
 *   URL-mode elicitation; the client opens the URL and sends the request again;
 * - 2026-07-28, a client that takes URL elicitations: an `input_required` result whose input
 *   request is that elicitation; its retry carries the gateway's `requestState`, taken off here
 *   before the request goes upstream (the upstream never issued it). Any other 2026 client gets
 *   the -32042 error too.
 */
import { toJsonRpcError } from '../errors.ts'
import type { JsonRpcMessage } from '../jsonrpc.ts'
import { isPlainObject } from '../options.ts'
import { META } from '../upstream/modern-upstream-for-legacy-clients.ts'
import type { ConsentPrompt } from './identity.ts'

/** The gateway's own `requestState`: a retry carrying it is a retry after a sign-in. */
export const CONSENT_STATE = 'mcp-gw-consent:'

export function consentOf (err: unknown): ConsentPrompt | undefined {
  return (err as { code?: string }).code === 'MCP_GW_CONSENT_REQUIRED' ? (err as { consent?: ConsentPrompt }).consent : undefined
}

function takesUrlElicitation (message: JsonRpcMessage): boolean {
  const meta = 'method' in message ? message.params?._meta as Record<string, unknown> | undefined : undefined
  const capabilities = meta?.[META.clientCapabilities] as { elicitation?: { url?: unknown } } | undefined
  return capabilities?.elicitation?.url !== undefined
}

/** The prompt as MCP's URL-mode elicitation (the error's `data.elicitations[]`, the input request's params). */
export function urlElicitation (prompt: ConsentPrompt, message: string): Record<string, unknown> {
  return { mode: 'url', elicitationId: prompt.elicitationId, url: prompt.url, message }
}

/** One answer per request of the exchange, each the prompt as its era and capabilities take it. */
export function consentAnswers (err: Error, prompt: ConsentPrompt, messages: readonly JsonRpcMessage[], stateless: boolean): JsonRpcMessage[] {
  const elicitation = urlElicitation(prompt, err.message)
  const out: JsonRpcMessage[] = []
  for (const message of messages) {
    if (!('method' in message) || !('id' in message)) continue
    if (stateless && takesUrlElicitation(message)) {
      out.push({
        jsonrpc: '2.0',
        id: message.id,
        result: {
          resultType: 'input_required',
          inputRequests: { [prompt.elicitationId]: { method: 'elicitation/create', params: elicitation } },
          requestState: CONSENT_STATE + prompt.elicitationId
        }
      })
      continue
    }
    out.push(toJsonRpcError(err, message.id).body)
  }
  return out
}

/**
 * A 2026 retry after a consent prompt, without the gateway's `requestState` and the answer to its
 * elicitation; undefined when the message carries neither.
 */
export function withoutConsentState (message: JsonRpcMessage): JsonRpcMessage | undefined {
  if (!('method' in message) || message.params === undefined) return undefined
  const state = message.params.requestState
  if (typeof state !== 'string' || !state.startsWith(CONSENT_STATE)) return undefined
  const { requestState: _state, inputResponses, ...params } = message.params
  // Only a map of answers holds the gateway's own; anything else goes on as the client sent it,
  // for the upstream to judge (spread, an array or a string would become a different map).
  if (!isPlainObject(inputResponses)) return { ...message, params: inputResponses === undefined ? params : { ...params, inputResponses } }
  const responses = { ...inputResponses }
  delete responses[state.slice(CONSENT_STATE.length)]
  if (Object.keys(responses).length > 0) params.inputResponses = responses
  return { ...message, params }
}
