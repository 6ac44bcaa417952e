/**
 * The admin API as a test uses it: a request with an admin key, and the live feed (SSE) read as
 * events, each awaited by its type (no polling: the test goes on when the gateway says so).
 */
type Teardown = { teardown (fn: () => unknown): void }

export async function adminApi (base: string, key: string, method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` }
  if (body !== undefined || method === 'POST') headers['content-type'] = 'application/json'
  return await fetch(`${base}/api${path}`, { method, headers, body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined })
}

export interface Feed {
  /** The next event of this type not yet taken (waits for it, 10 s at most). */
  next (type: string): Promise<unknown>
}

export async function adminFeed (t: Teardown, base: string, key: string): Promise<Feed> {
  const abort = new AbortController()
  const res = await fetch(`${base}/api/events`, { headers: { authorization: `Bearer ${key}` }, signal: abort.signal })
  if (res.status !== 200 || res.body === null) throw new Error(`the feed answered HTTP ${res.status}`)
  t.teardown(() => { abort.abort() })
  const events: Array<{ type: string, data: unknown }> = []
  const waiters: Array<() => void> = []
  void (async () => {
    let buffer = ''
    const decoder = new TextDecoder()
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const type = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (type === undefined || data === undefined) continue
          events.push({ type, data: JSON.parse(data) as unknown })
          for (const wake of waiters.splice(0)) wake()
        }
      }
    } catch {}
  })()
  return {
    async next (type) {
      const until = Date.now() + 10_000
      for (;;) {
        const at = events.findIndex((event) => event.type === type)
        if (at !== -1) return (events.splice(at, 1)[0] as { data: unknown }).data
        const left = until - Date.now()
        if (left <= 0) throw new Error(`no ${type} event on the admin feed`)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left)
          waiters.push(() => { clearTimeout(timer); resolve() })
        })
      }
    }
  }
}
