/**
 * Result size limits: a `tools/call` result larger than its tool's limit is cut to fit (its text
 * content, with a marker saying so) or refused with a coded error, as the endpoint's
 * `resultLimits` say. A model's context is the scarce thing here: one runaway tool (a whole log
 * file, a table dump) should cost a bounded part of it, and say that it did.
 *
 * Sizes are bytes of the result's JSON, as the client receives it. Only text content is cut:
 * structured content, images, audio and embedded resources are whole or not at all, so a result
 * whose other parts alone are over the limit is refused even when cutting was asked for.
 */
import { GatewayErrors, toJsonRpcError } from '../errors.ts'
import type { JsonRpcMessage, JsonRpcResult } from '../jsonrpc.ts'
import type { Interceptor } from './chain.ts'

export interface ResultLimits {
  /** Every tool's limit, in bytes (none when absent: only `tools` are limited). */
  maxBytes?: number | undefined
  /** Limits of particular tools, by the name the client calls them by. */
  tools?: Record<string, number> | undefined
  /** `truncate`: cut text content to fit, with a marker; `error`: answer MCP_GW_RESULT_TOO_LARGE. */
  action: 'truncate' | 'error'
}

/** What happened to a result over its limit (for metrics). */
export type Limited = 'truncated' | 'refused'

interface TextItem { type: 'text', text: string }

const bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value))

/** What the model reads in place of what was cut. */
export function truncationMarker (size: number, limit: number): string {
  return `[truncated by the gateway: the result was ${size} bytes, over this tool's limit of ${limit} bytes]`
}

export function resultLimitInterceptor (limits: ResultLimits, onLimited: (action: Limited) => void): Interceptor {
  const tools = new Map(Object.entries(limits.tools ?? {}))
  return {
    name: 'mcp-gateway:result-limits',
    match: { direction: 'upstream_to_client', kind: 'response', method: 'tools/call' },
    handler (message, ctx) {
      const name = ctx.request?.params?.name
      const limit = (typeof name === 'string' ? tools.get(name) : undefined) ?? limits.maxBytes
      const { result, id } = message as JsonRpcResult
      if (limit === undefined || typeof result !== 'object' || result === null) return undefined
      const size = bytes(result)
      if (size <= limit) return undefined
      const cut = limits.action === 'truncate' ? truncated(result, size, limit) : undefined
      onLimited(cut === undefined ? 'refused' : 'truncated')
      ctx.log.info({ tool: name, bytes: size, limit, action: limits.action }, cut === undefined ? 'tool result over its limit refused' : 'tool result over its limit truncated')
      if (cut !== undefined) return { action: 'modify', message: { jsonrpc: '2.0', id, result: cut } }
      const err = Object.assign(new GatewayErrors.RESULT_TOO_LARGE(String(name), size, limit), { data: { limit: 'resultLimits', bytes: limit, size } })
      return { action: 'modify', message: { ...toJsonRpcError(err, id).body } as JsonRpcMessage }
    }
  }
}

/**
 * The result with its text content cut so that the whole, marker included, fits in `limit`
 * bytes: text items kept whole in order while they fit, the first that does not fit cut, later
 * text left out (other items stay, in place), then the marker as a text item of its own. Undefined when even no text at all
 * would not fit (the other parts are over the limit by themselves).
 */
export function truncated (result: Record<string, unknown>, size: number, limit: number): Record<string, unknown> | undefined {
  const content = Array.isArray(result.content) ? result.content as unknown[] : []
  const marker: TextItem = { type: 'text', text: truncationMarker(size, limit) }
  const others = content.filter((item) => !isText(item))
  // What stays whatever is cut: every other field and item, and the marker.
  let budget = limit - bytes({ ...result, content: [...others, marker] })
  if (budget < 0) return undefined
  const kept: unknown[] = []
  let full = false
  for (const item of content) {
    // Other items stay whole and in place (their bytes are in the budget already).
    if (!isText(item)) {
      kept.push(item)
      continue
    }
    if (full) continue
    // An item costs its JSON and a comma; only text that fits is worth an item.
    const whole = bytes(item) + 1
    if (whole <= budget) {
      kept.push(item)
      budget -= whole
      continue
    }
    const room = budget - (whole - bytes(item.text))
    const text = room > 2 ? prefixWithin(item.text, room) : ''
    if (text.length > 0) kept.push({ ...item, text })
    full = true
  }
  kept.push(marker)
  return { ...result, content: kept }
}

function isText (item: unknown): item is TextItem {
  return typeof item === 'object' && item !== null && (item as { type?: unknown }).type === 'text' && typeof (item as { text?: unknown }).text === 'string'
}

/**
 * The longest start of `text` whose JSON string is at most `room` bytes, cut between whole
 * characters: a cut inside a surrogate pair moves past its second half (half a pair alone would
 * be escaped to six bytes, more than the whole pair's four, and is no character at all).
 */
function prefixWithin (text: string, room: number): string {
  const end = (n: number): number => {
    const code = text.charCodeAt(n - 1)
    return n < text.length && code >= 0xd800 && code <= 0xdbff ? n + 1 : n
  }
  let low = 0
  let high = Math.min(text.length, room)
  while (low < high) {
    const mid = Math.ceil((low + high) / 2)
    if (bytes(text.slice(0, end(mid))) <= room) low = mid
    else high = mid - 1
  }
  return text.slice(0, end(low))
}
