/**
 * The audit log (`fastify.mcpAudit`): one record per `tools/call`, `resources/read` and
 * `prompts/get` (or the methods configured) and per request a policy denies, written off the
 * request path to a hash-chained JSONL file and/or the logger (lib/audit/). Register it before
 * the MCP endpoints (`mcpProxy`), which record into it; the umbrella plugin does.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { EMPTY_HEAD } from '../lib/audit/chain.ts'
import { AuditFile, type AuditFileOptions } from '../lib/audit/file-sink.ts'
import { invalid } from '../lib/options.ts'
import { AuditLog } from '../lib/audit/log.ts'
import { linkPolicy } from '../lib/audit/policy-link.ts'
import { checkAuditOptions, type McpAuditOptions } from './audit-options.ts'

export type { McpAuditOptions } from './audit-options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The audit log: its chain head, and counts of records written, dropped and lost. */
    mcpAudit: AuditLog
  }
}

async function mcpAudit (fastify: FastifyInstance, options: McpAuditOptions): Promise<void> {
  const checked = checkAuditOptions(options)
  if (fastify.mcpEndpoints.size > 0) fastify.log.warn('the audit plugin was registered after MCP endpoints: their requests are not recorded')
  const opened = checked.file === undefined ? undefined : await openFile(checked.file)
  const audit = new AuditLog({
    file: opened?.file,
    head: opened?.head ?? EMPTY_HEAD,
    logRecords: checked.log,
    log: fastify.log,
    methods: checked.methods,
    arguments: checked.arguments,
    redact: checked.redact,
    queueLimit: checked.queueLimit,
    flushMs: checked.flushMs
  })
  if (opened?.cut === true) {
    audit.lostBefore(1, 'an incomplete last record (a crash mid-write) was cut at start')
    fastify.log.warn({ file: checked.file?.path }, 'the audit file ended with an incomplete record: it was cut, and the chain records the loss')
  }
  fastify.decorate('mcpAudit', audit)
  if (fastify.hasDecorator('mcpPolicy')) linkPolicy(fastify.mcpPolicy, audit)
  fastify.log.info({ file: checked.file?.path, head: audit.chainHead }, 'audit log open')
  fastify.addHook('onClose', async () => { await audit.close() })
}

/** The audit file, or a refusal naming the option (a start that cannot audit must not serve). */
async function openFile (options: AuditFileOptions): ReturnType<typeof AuditFile.open> {
  try {
    return await AuditFile.open(options)
  } catch (err) {
    throw invalid('audit.file.path', `cannot be opened: ${(err as Error).message}`)
  }
}

export default fp(mcpAudit, { name: 'mcp-gateway-audit', fastify: '5.x', dependencies: ['mcp-gateway-core'] })
