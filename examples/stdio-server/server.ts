#!/usr/bin/env node
/**
 * The demo MCP server over stdio (`@modelcontextprotocol/sdk`'s StdioServerTransport): what most
 * MCP servers people run look like, and the child the gateway's stdio upstream tests spawn.
 *
 * Besides the demo tools: `whoami` tells which process answers and how many calls it has served
 * (so tests can see that sessions do not share a process), `crash` exits mid-call, `hog` holds
 * memory (for the gateway's memory ceiling), and `garbage` writes a line that is not JSON-RPC to
 * stdout.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { z } from 'zod'
import { buildDemoServer } from '../demo-upstream/tools.ts'

let calls = 0
const server = buildDemoServer({
  extraTools (mcp) {
    mcp.registerTool('whoami', { description: 'The serving process and its call count' }, async () => {
      calls++
      return { content: [{ type: 'text', text: `${process.pid}:${calls}` }], structuredContent: { pid: process.pid, calls } }
    })
    mcp.registerTool('crash', {
      description: 'Exits the process with the given code after a delay, without answering',
      inputSchema: { code: z.number().int().default(3), afterMs: z.number().int().min(0).default(0) }
    }, async ({ code, afterMs }) => {
      await new Promise((resolve) => setTimeout(resolve, afterMs))
      process.exit(code)
    })
    mcp.registerTool('hog', {
      description: 'Holds mb MiB of memory (written, so resident) for holdMs, then answers',
      inputSchema: { mb: z.number().int().min(1).max(2048), holdMs: z.number().int().min(0).max(60_000).default(0) }
    }, async ({ mb, holdMs }) => {
      const held = Buffer.alloc(mb * 1048576, 1)
      await new Promise((resolve) => setTimeout(resolve, holdMs))
      return { content: [{ type: 'text', text: `held ${held.length} bytes` }] }
    })
    mcp.registerTool('garbage', { description: 'Writes a line that is not JSON-RPC to stdout' }, async () => {
      process.stdout.write('this is not JSON-RPC\n')
      return { content: [{ type: 'text', text: 'wrote garbage' }] }
    })
  }
})
process.stderr.write(`stdio demo server ${process.pid} ready\n`)
await server.connect(new StdioServerTransport())
