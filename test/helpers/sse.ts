/** Reading SSE responses in tests. */
import type { SseEvent } from '../../lib/sse/encode.ts'
import { SseParser } from '../../lib/sse/parser.ts'

/** Reads an SSE response to its end, or until `stopAfter` events, with the comments seen. */
export async function readEvents (res: Response, stopAfter = Infinity, onEvent?: (event: SseEvent) => void): Promise<{ events: SseEvent[], comments: string[] }> {
  const events: SseEvent[] = []
  const comments: string[] = []
  const parser = new SseParser({ onEvent: (e) => { events.push(e); onEvent?.(e) }, onComment: (c) => comments.push(c) })
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  while (events.length < stopAfter) {
    const { value, done } = await reader.read()
    if (done) break
    parser.push(value)
  }
  await reader.cancel().catch(() => {})
  return { events, comments }
}
