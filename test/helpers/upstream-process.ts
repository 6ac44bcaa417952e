/**
 * The demo upstream in a child process of its own (under the test's TypeScript loader), so a test
 * can SIGKILL it mid-call. Resolves with its URL once it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const MAIN = fileURLToPath(new URL('./upstream-main.ts', import.meta.url))

export async function upstreamProcess (t: { teardown (fn: () => unknown): void }, options: { jsonResponse?: boolean } = {}): Promise<{ url: string, child: ChildProcess }> {
  const child = spawn(process.execPath, [...process.execArgv, MAIN, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
      const match = /^listening (\S+)$/m.exec(out)
      if (match?.[1] !== undefined) resolve(match[1])
    })
    child.once('exit', (code) => reject(new Error(`upstream exited with ${String(code)}`)))
  })
  return { url, child }
}
