/**
 * The stdio demo server as a gateway upstream. Tests spawn many of them: under tap's TypeScript
 * loader each would take seconds to start, so the server is transpiled to plain JavaScript once
 * (into node_modules/.cache, where its imports resolve) and run by plain node, as users run it.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import type { StdioUpstreamOptions } from '../../lib/upstream/create.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SOURCES = ['examples/stdio-server/server.ts', 'examples/demo-upstream/tools.ts']
const OUT = join(ROOT, 'node_modules', '.cache', 'fastify-mcp-gateway')

let built: string | undefined

/** The server as JavaScript, transpiled once per test process (atomically: files run in parallel). */
export function stdioServerScript (): string {
  if (built !== undefined) return built
  mkdirSync(OUT, { recursive: true })
  writeFileSync(join(OUT, 'package.json'), '{ "type": "module" }\n')
  for (const source of SOURCES) {
    const text = readFileSync(join(ROOT, source), 'utf8')
    const out = ts.transpileModule(text, {
      fileName: source,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, rewriteRelativeImportExtensions: true }
    })
    const target = join(OUT, source.replace(/\.ts$/, '.js'))
    mkdirSync(dirname(target), { recursive: true })
    const temporary = `${target}.${process.pid}`
    writeFileSync(temporary, out.outputText)
    renameSync(temporary, target)
  }
  built = join(OUT, 'examples/stdio-server/server.js')
  return built
}

export function stdioUpstream (extra: Partial<StdioUpstreamOptions> = {}): StdioUpstreamOptions {
  return { kind: 'stdio', name: 'stdio-demo', command: process.execPath, args: [stdioServerScript()], ...extra }
}

/** Whether a process is still alive. */
export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
