/**
 * The benchmark's policy: 20 rules, half on `arguments`, none denying the echo call it measures
 * (each one runs). What a platform team's policy looks like: tools by name and glob, principals,
 * annotations, arguments by key and value.
 */
import type { PolicyRule } from '../../lib/policy/policy.ts'

const argumentRules: PolicyRule[] = [
  { name: 'no-drop', effect: 'deny', when: 'has(arguments.text) && arguments.text.startsWith("DROP ")' },
  { name: 'no-huge-limit', effect: 'deny', when: 'arguments.?limit.orValue(0.0) > 10000.0' },
  { name: 'analytics-db', effect: 'deny', when: 'tool.name == "run_query" && arguments.?database.orValue("") != "analytics"' },
  { name: 'no-recursive', effect: 'deny', when: 'tool.name.glob("delete_*") && arguments.?recursive.orValue(false) == true' },
  { name: 'no-etc', effect: 'deny', when: 'has(arguments.path) && arguments.path.startsWith("/etc")' },
  { name: 'short-text', effect: 'deny', when: 'has(arguments.text) && size(arguments.text) > 100000' },
  { name: 'no-secrets', effect: 'deny', when: 'has(arguments.text) && arguments.text.contains("BEGIN PRIVATE KEY")' },
  { name: 'sane-a', effect: 'deny', when: 'has(arguments.a) && arguments.a > 1000000.0' },
  { name: 'no-wildcards', effect: 'deny', when: 'has(arguments.query) && arguments.query == "*"' },
  { name: 'few-keys', effect: 'deny', when: 'size(arguments) > 50' }
]

const otherRules: PolicyRule[] = [
  { name: 'no-admin-tools', effect: 'deny', when: 'tool.name.glob("admin_*")' },
  { name: 'contractors-read', effect: 'deny', when: 'method == "tools/call" && "contractor" in principal.scopes && !tool.annotations.readOnlyHint' },
  { name: 'no-shell', effect: 'deny', when: 'tool.name in ["exec", "shell", "run_command"]' },
  { name: 'prod-team', effect: 'deny', when: 'upstream.name == "prod" && principal.claims.?team.orValue("") != "sre"' },
  { name: 'no-destructive-2026', effect: 'deny', when: 'session.era == "2026" && tool.annotations.destructiveHint && tool.name.startsWith("drop")' },
  { name: 'office-hours', effect: 'deny', when: 'tool.name.glob("deploy_*") && now.getHours("UTC") > 22' },
  { name: 'no-raw-prompts', effect: 'deny', when: 'method == "prompts/get" && prompt.name.startsWith("raw_")' },
  { name: 'no-private-files', effect: 'deny', when: 'method == "resources/read" && resource.uri.startsWith("file:///private")' },
  { name: 'member-guard', effect: 'deny', when: 'upstream.member == "billing" && tool.ownName != "invoice_status"' },
  { name: 'header-guard', effect: 'deny', when: 'headers[?"x-block"].orValue("") == "yes"' }
]

export const BENCH_POLICY: PolicyRule[] = [...argumentRules, ...otherRules]
