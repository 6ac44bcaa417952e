/**
 * The demo MCP server's tools, shared by every transport it is offered on (Streamable HTTP, stdio,
 * legacy HTTP+SSE):
 * - `echo` returns its text; `add` adds two numbers;
 * - `countdown` reports progress once per step, then answers;
 * - `wait` waits (or until cancelled) and records whether it was cancelled;
 * - `confirm` asks the client a question (elicitation), not tied to the call's stream.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'

export interface DemoServerOptions {
  /** The transport answers in JSON: request-scoped notifications go on the GET stream. */
  jsonResponse?: boolean
  /** Where `wait` records the ids of cancelled calls. */
  record?: { cancelled: Array<string | number> }
  /** Registers more tools. */
  extraTools?: (server: McpServer) => void
  /**
   * `grow` adds a tool to every session of the server (and announces it with
   * `notifications/tools/list_changed`); without this, only to the calling session.
   */
  onGrow?: (name: string) => void
}

/** One MCP server with the demo tools, to connect to any transport. */
export function buildDemoServer (options: DemoServerOptions = {}): McpServer {
  const jsonResponse = options.jsonResponse ?? false
  const record = options.record ?? { cancelled: [] }
  const extraTools = options.extraTools
  const mcp = new McpServer({ name: 'demo-upstream', version: '1.0.0' }, { capabilities: { logging: {} } })

  mcp.registerTool('echo', {
    description: 'Returns its text',
    inputSchema: { text: z.string() }
  }, async ({ text }) => ({ content: [{ type: 'text', text }] }))

  mcp.registerTool('add', {
    description: 'Adds two numbers',
    inputSchema: { a: z.number(), b: z.number() }
  }, async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }))

  mcp.registerTool('countdown', {
    description: 'Counts down, reporting progress at each step',
    inputSchema: { from: z.number().int().min(1).max(1000), delayMs: z.number().int().min(0).max(10_000).default(10) }
  }, async ({ from, delayMs }, extra) => {
    const progressToken = extra._meta?.progressToken
    for (let step = 1; step <= from; step++) {
      if (progressToken !== undefined) {
        const notification = {
          method: 'notifications/progress' as const,
          params: { progressToken, progress: step, total: from, message: `${from - step} to go` }
        }
        // In JSON mode the SDK drops request-scoped notifications, so use the GET stream.
        if (jsonResponse) await mcp.server.notification(notification)
        else await extra.sendNotification(notification)
      }
      // Work after each report, so that even the last one leaves before the answer.
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs))
    }
    return { content: [{ type: 'text', text: 'liftoff' }] }
  })

  mcp.registerTool('wait', {
    description: 'Waits for the given time, or until the request is cancelled',
    inputSchema: { ms: z.number().int().min(0).max(600_000) }
  }, async ({ ms }, extra) => {
    const cancelled = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms)
      extra.signal.addEventListener('abort', () => {
        clearTimeout(timer)
        resolve(true)
      }, { once: true })
    })
    if (cancelled) record.cancelled.push(extra.requestId)
    return { content: [{ type: 'text', text: cancelled ? 'cancelled' : 'waited' }] }
  })

  mcp.registerTool('confirm', {
    description: 'Asks the user a yes/no question through elicitation',
    inputSchema: { question: z.string() }
  }, async ({ question }) => {
    // No related request id: the elicitation travels on the session's GET stream.
    const answer = await mcp.server.elicitInput({
      mode: 'form',
      message: question,
      requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }
    })
    const ok = answer.action === 'accept' && answer.content?.ok === true
    return { content: [{ type: 'text', text: ok ? 'confirmed' : 'declined' }] }
  })

  mcp.registerTool('grow', {
    description: 'Adds a tool (announced with notifications/tools/list_changed)',
    inputSchema: { name: z.string() }
  }, async ({ name }) => {
    if (options.onGrow !== undefined) options.onGrow(name)
    else addTool(mcp, name)
    return { content: [{ type: 'text', text: `added ${name}` }] }
  })

  extraTools?.(mcp)
  return mcp
}


/** Registers a tool that answers its own name (the SDK announces the list change itself). */
export function addTool (mcp: McpServer, name: string): void {
  mcp.registerTool(name, { description: 'Added at run time' }, async () => ({ content: [{ type: 'text', text: name }] }))
}
