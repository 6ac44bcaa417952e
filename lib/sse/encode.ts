/** Server-Sent Events encoding (WHATWG HTML, "server-sent events"). */

export interface SseEvent {
  /** Empty string when the event carries no data (a priming event that only sets an id). */
  data: string
  id?: string
  event?: string
}

/** One event as wire text. Data containing newlines becomes several `data:` lines. */
export function encodeEvent (event: SseEvent): string {
  let out = ''
  if (event.event !== undefined && event.event !== 'message') out += `event: ${event.event}\n`
  if (event.id !== undefined) out += `id: ${event.id}\n`
  const data = event.data
  if (data.includes('\n') || data.includes('\r')) {
    for (const line of data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`
  } else {
    out += `data: ${data}\n`
  }
  return out + '\n'
}

/** A comment line: ignored by clients, keeps intermediaries from closing an idle stream. */
export function encodeComment (text = ''): string {
  return `: ${text.replace(/[\r\n]+/g, ' ')}\n\n`
}

export function encodeRetry (milliseconds: number): string {
  return `retry: ${Math.max(0, Math.floor(milliseconds))}\n\n`
}
