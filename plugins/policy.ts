/**
 * CEL policy on every MCP request and list (`fastify.mcpPolicy`): rules from the options or from a
 * policy file that is reloaded when it changes, run as interceptors on the gateway's chain
 * (lib/policy/gate.ts), so they hold on every endpoint and transport registered on this server.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { compiled, PolicyFileWatcher, readPolicyFile } from '../lib/policy/file.ts'
import { PolicyGate } from '../lib/policy/gate.ts'
import { Policy } from '../lib/policy/policy.ts'
import { linkPolicy } from '../lib/audit/policy-link.ts'
import { checkPolicyOptions, type McpPolicyOptions } from './policy-options.ts'

export type { McpPolicyOptions } from './policy-options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The policy in force (`.policy`), its version and last reload's outcome, and decisions so far. */
    mcpPolicy: PolicyGate
  }
}

async function mcpPolicy (fastify: FastifyInstance, options: McpPolicyOptions): Promise<void> {
  const checked = checkPolicyOptions(options)
  const file = checked.file
  const loaded = file === undefined
    ? { policy: compiled(() => new Policy({ default: checked.default, rules: checked.rules ?? [] }), 'policy.rules'), text: '' }
    : readPolicyFile(file)
  const gate = new PolicyGate(loaded.policy)
  for (const interceptor of gate.interceptors()) fastify.mcpInterceptors.add(interceptor)
  fastify.decorate('mcpPolicy', gate)
  // Audit registered first: its records say the policy's decisions.
  if (fastify.hasDecorator('mcpAudit')) linkPolicy(gate, fastify.mcpAudit)
  // The admin plugin registered first: approve rules hold calls there (registered after, it links itself).
  if (fastify.hasDecorator('mcpApprovals')) gate.approvals = fastify.mcpApprovals
  fastify.log.info({ rules: loaded.policy.size, default: loaded.policy.default, file }, 'policy loaded')
  if (file === undefined) return
  const watcher = new PolicyFileWatcher(file, checked.pollMs, loaded.text, (policy) => {
    gate.swap(policy)
    fastify.log.info({ file, version: gate.version, rules: policy.size }, 'policy reloaded')
  }, (err) => {
    gate.reloadFailed = true
    fastify.log.error({ file, err }, 'policy file not loaded; the policy in force stays')
  })
  watcher.start()
  fastify.addHook('onClose', async () => { watcher.close() })
}

export default fp(mcpPolicy, { name: 'mcp-gateway-policy', fastify: '5.x', dependencies: ['mcp-gateway-interceptors'] })
