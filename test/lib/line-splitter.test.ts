/**
 * The stdio line splitter: lines split anywhere (a CRLF across chunks included), a partial line
 * past the limit stops it, and a long line in small chunks costs linear time (no re-copy of what
 * is pending on every chunk).
 */
import t from 'tap'
import { LineSplitter } from '../../lib/upstream/channel.ts'

function split (chunks: string[], maxBytes = 1024): { lines: string[], ok: boolean } {
  const lines: string[] = []
  const splitter = new LineSplitter(maxBytes, (line) => lines.push(line.toString('utf8')))
  let ok = true
  for (const chunk of chunks) {
    if (!splitter.push(Buffer.from(chunk))) {
      ok = false
      break
    }
  }
  if (ok) splitter.flush()
  return { lines, ok }
}

t.test('lines, wherever the chunks split', async (t) => {
  const text = 'one\r\ntwo\n\nthree\r\n\r\nfour, é and 😀\nlast'
  const expected = ['one', 'two', 'three', 'four, é and 😀', 'last']
  t.same(split([text]).lines, expected)
  const bytes = Buffer.from(text)
  for (let cut = 1; cut < bytes.length; cut++) {
    for (let cut2 = cut; cut2 < bytes.length; cut2 += 3) {
      const lines: string[] = []
      const splitter = new LineSplitter(1024, (line) => lines.push(line.toString('utf8')))
      splitter.push(bytes.subarray(0, cut))
      splitter.push(bytes.subarray(cut, cut2))
      splitter.push(bytes.subarray(cut2))
      splitter.flush()
      if (JSON.stringify(lines) !== JSON.stringify(expected)) t.fail(`cut at ${cut}, ${cut2}: ${JSON.stringify(lines)}`)
    }
  }
  t.same(split(['a\r', '\nb\r', '\n']).lines, ['a', 'b'], 'CRLF across chunks')
})

t.test('a partial line past the limit stops the splitter', async (t) => {
  t.same(split(['x'.repeat(600), 'x'.repeat(600)], 1000), { lines: [], ok: false })
  t.same(split(['ok\n', 'x'.repeat(1000), '\n'], 1000), { lines: ['ok', 'x'.repeat(1000)], ok: true }, 'at the limit is fine')
})

t.test('a long line in small chunks: linear time', async (t) => {
  // 8 MiB in 1 KiB chunks: concatenating what is pending with each chunk copies ~32 GB (many
  // seconds); keeping the pieces and joining once copies 8 MiB.
  const chunk = Buffer.alloc(1024, 0x78)
  let length = 0
  const splitter = new LineSplitter(16 * 1024 * 1024, (line) => { length = line.length })
  const started = performance.now()
  for (let i = 0; i < 8192; i++) splitter.push(chunk)
  splitter.push(Buffer.from('\r\n'))
  const ms = performance.now() - started
  t.equal(length, 8 * 1024 * 1024)
  t.ok(ms < 400, `${ms.toFixed(0)} ms`)
})
