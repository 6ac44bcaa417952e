/**
 * Tapes (`fastify.mcpTapes`): sessions recorded to JSONL files, every message both ways with its
 * timing, arguments redacted as the audit log's are (lib/tapes/). `fastify-mcp-gateway tape
 * replay` serves a tape as an MCP upstream; `tape diff` compares two. Sessions are chosen by the
 * `record` rules, or started and stopped from the admin API.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { DEFAULT_REDACT, Redactor } from '../lib/audit/record.ts'
import { TapeRecorder } from '../lib/tapes/recorder.ts'
import { checkTapesOptions, type McpTapesOptions } from './tapes-options.ts'

export type { McpTapesOptions } from './tapes-options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Tapes: `record(session)`, `stop(id)`, `list()`. */
    mcpTapes: TapeRecorder
  }
}

async function mcpTapes (fastify: FastifyInstance, options: McpTapesOptions): Promise<void> {
  const checked = checkTapesOptions(options)
  if (fastify.mcpEndpoints.size > 0) fastify.log.warn('the tapes plugin was registered after MCP endpoints: their sessions are not taped')
  const redact = fastify.hasDecorator('mcpAudit') ? fastify.mcpAudit.redact : DEFAULT_REDACT
  const sessions = fastify.mcpSessions
  const recorder = new TapeRecorder({ dir: checked.dir, rules: checked.record, maxBytes: checked.maxBytes, redactor: new Redactor(redact), log: fastify.log, find: async (id) => await sessions.find(id) })
  fastify.mcpObservers.push(recorder)
  sessions.onEnd((record) => { recorder.ended(record.id) })
  fastify.decorate('mcpTapes', recorder)
  fastify.addHook('onClose', async () => { await recorder.close() })
}

export default fp(mcpTapes, { name: 'mcp-gateway-tapes', fastify: '5.x', dependencies: ['mcp-gateway-sessions'] })
