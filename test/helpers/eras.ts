/** Peers of both protocol eras for the era tests: 2.x SDK clients (2026-07-28) and 1.x ones (2025). */
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client'
import { startModernUpstream, type ModernUpstream, type ModernUpstreamOptions } from '../../examples/modern-upstream/server.ts'

interface Teardown {
  teardown (fn: () => unknown): void
}

export async function modernUpstream (t: Teardown, options: ModernUpstreamOptions = {}): Promise<ModernUpstream> {
  const up = await startModernUpstream(options)
  t.teardown(() => up.close())
  return up
}

export interface ModernClientOptions {
  /** Answer elicitations with this. */
  onElicit?: (message: string) => { ok: boolean }
  /** Called on every tools list change the client hears of. */
  onToolsChanged?: (names: string[]) => void
  /** Sent with every request (an API key, say). */
  headers?: Record<string, string>
}

/** A 2.x client pinned to 2026-07-28: stateless requests, MRTR fulfilled automatically. */
export async function modernClient (t: Teardown, url: string, options: ModernClientOptions = {}): Promise<ModernClient> {
  const client = new ModernClient({ name: 'modern-test-client', version: '2.0.0' }, {
    capabilities: { elicitation: { form: {} } },
    versionNegotiation: { mode: { pin: '2026-07-28' } },
    ...(options.onToolsChanged === undefined
      ? {}
      : { listChanged: { tools: { onChanged: (error: Error | null, tools: Array<{ name: string }> | null) => { if (error === null && tools !== null) options.onToolsChanged?.(tools.map((tool) => tool.name)) } } } })
  })
  const onElicit = options.onElicit
  if (onElicit !== undefined) {
    client.setRequestHandler('elicitation/create', async (request) => ({ action: 'accept', content: onElicit((request.params as { message: string }).message) }))
  }
  await client.connect(new ModernTransport(new URL(url), options.headers === undefined ? undefined : { requestInit: { headers: options.headers } }))
  t.teardown(() => client.close())
  return client
}
