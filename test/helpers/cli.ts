/**
 * The CLI in a child process, under tap's TypeScript loader (the same one running the test): the
 * gateway as a user runs it, for tests that signal or kill it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../../examples/gateway/cli.ts', import.meta.url))

export interface Started {
  child: ChildProcess
  endpoint: string
  output: () => string
}

export async function startCli (args: string[], env: Record<string, string> = {}): Promise<Started> {
  const child = spawn(process.execPath, [...process.execArgv, CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const endpoint = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`CLI did not start:\n${output}`)), 20_000)
    const check = (): void => {
      const match = /connect your MCP client to (\S+)/.exec(output)
      if (match?.[1] !== undefined) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    child.stdout?.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`CLI exited with ${code}:\n${output}`))
    })
  })
  return { child, endpoint, output: () => output }
}

/** Runs the CLI to its end: its exit code (null when killed after `ms`, which fails the test) and output. */
export async function runCli (args: string[], ms = 20_000): Promise<{ code: number | null, timedOut: boolean, output: string }> {
  const child = spawn(process.execPath, [...process.execArgv, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, ms)
  const code = await new Promise<number | null>((resolve) => { child.once('exit', (exitCode) => resolve(exitCode)) })
  clearTimeout(timer)
  return { code, timedOut, output }
}

/** Resolves with the child's exit code, or rejects when it is still running after `ms`. */
export async function exitOf (child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${String(child.pid)} still running after ${ms} ms`)), ms)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
}
