/**
 * A 2026-07-28 MCP server built with the 2.x SDK (`@modelcontextprotocol/server`): stateless,
 * no `initialize`, `server/discover`, multi round-trip elicitation (`input_required`), change
 * notifications on `subscriptions/listen`. The peer of the era-bridging tests, with the same
 * tools as the 2025-era demo server:
 * - `echo`, `add`;
 * - `countdown` reports progress once per step (on the call's own stream), then answers;
 * - `confirm` asks the user through an `input_required` result and answers once retried;
 * - `grow` registers a new tool and announces it (`notifications/tools/list_changed`).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { McpServer, acceptedContent, createMcpHandler, inputRequired, type McpServerOptions } from '@modelcontextprotocol/server'
import { toNodeHandler } from '@modelcontextprotocol/node'
import { z } from 'zod'

export interface ModernUpstream {
  url: string
  server: Server
  /** What the upstream saw: every request's method and headers, for tests. */
  requests: Array<{ method: string, headers: Record<string, string | string[] | undefined>, body: unknown }>
  close: () => Promise<void>
}

export interface ModernUpstreamOptions {
  /** How long its lists may be cached, and by whom (`ttlMs`, `cacheScope`); default: 0, private. */
  cacheHints?: McpServerOptions['cacheHints']
}

export async function startModernUpstream (options: ModernUpstreamOptions = {}): Promise<ModernUpstream> {
  const extraTools = new Set<string>()
  const build = (): McpServer => {
    const mcp = new McpServer({ name: 'modern-upstream', version: '2.0.0' }, { capabilities: { tools: { listChanged: true } }, ...(options.cacheHints === undefined ? {} : { cacheHints: options.cacheHints }) })
    mcp.registerTool('echo', { description: 'Returns its text', inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({ content: [{ type: 'text', text }] }))
    mcp.registerTool('add', { description: 'Adds two numbers', inputSchema: z.object({ a: z.number(), b: z.number() }) }, async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }))
    mcp.registerTool('countdown', {
      description: 'Counts down, reporting progress at each step',
      inputSchema: z.object({ from: z.number().int().min(1).max(1000), delayMs: z.number().int().min(0).max(10_000).default(10) })
    }, async ({ from, delayMs }, ctx) => {
      const progressToken = ctx.mcpReq._meta?.progressToken
      for (let step = 1; step <= from; step++) {
        if (progressToken !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: step, total: from } })
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs))
      }
      return { content: [{ type: 'text', text: 'liftoff' }] }
    })
    const answer = z.object({ ok: z.boolean() })
    mcp.registerTool('confirm', { description: 'Asks the user a yes/no question', inputSchema: z.object({ question: z.string() }) }, async ({ question }, ctx) => {
      const given = acceptedContent(ctx.mcpReq.inputResponses, 'confirm', answer)
      if (given === undefined) {
        return inputRequired({ inputRequests: { confirm: inputRequired.elicit({ message: question, requestedSchema: answer }) } })
      }
      return { content: [{ type: 'text', text: given.ok ? 'confirmed' : 'declined' }] }
    })
    mcp.registerTool('grow', { description: 'Adds a tool and announces it', inputSchema: z.object({ name: z.string() }) }, async ({ name }) => {
      extraTools.add(name)
      queueMicrotask(() => handler.notify.toolsChanged())
      return { content: [{ type: 'text', text: `added ${name}` }] }
    })
    for (const name of extraTools) mcp.registerTool(name, { description: 'Added at run time' }, async () => ({ content: [{ type: 'text', text: name }] }))
    return mcp
  }
  const handler = createMcpHandler(() => build(), { legacy: 'reject' })
  const node = toNodeHandler(handler)
  const requests: ModernUpstream['requests'] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      let body: unknown
      try {
        body = text.length === 0 ? undefined : JSON.parse(text)
      } catch {
        body = text
      }
      requests.push({ method: req.method ?? '', headers: req.headers, body })
      void node(req, res, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    server,
    requests,
    async close () {
      await handler.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
