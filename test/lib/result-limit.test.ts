/** Cutting a tool result to fit a byte limit: never over it, never more cut than needed, text only. */
import t from 'tap'
import { truncated, truncationMarker } from '../../lib/interceptors/result-limit.ts'

const bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value))
interface Item { type: string, text?: string, data?: string }

t.test('every limit from too small to large: within it, text only, cut at the end, whole characters', async (t) => {
  // Four-byte emoji (surrogate pairs), two-byte letters, and characters JSON escapes.
  const result = {
    content: [
      { type: 'text', text: 'first "quoted"\n' },
      { type: 'image', data: 'AAAA'.repeat(20), mimeType: 'image/png' },
      { type: 'text', text: '😀é\\x'.repeat(200) },
      { type: 'text', text: 'last' }
    ],
    structuredContent: { ok: true },
    isError: false
  }
  const size = bytes(result)
  let refused = 0
  let cutShort = 0
  for (let limit = 64; limit < size; limit += 7) {
    const cut = truncated(result, size, limit)
    const floor = bytes({ ...result, content: [result.content[1], { type: 'text', text: truncationMarker(size, limit) }] })
    if (cut === undefined) {
      refused++
      t.ok(floor > limit, `refused only when the other parts and the marker are over ${limit} by themselves`)
      continue
    }
    const content = cut.content as Item[]
    t.ok(bytes(cut) <= limit, `within ${limit}`)
    t.same(cut.structuredContent, { ok: true })
    t.equal(cut.isError, false)
    t.same(content.find((item) => item.type === 'image'), result.content[1], 'the image kept whole')
    t.equal(content.at(-1)?.text, truncationMarker(size, limit))
    const text = content.filter((item) => item.type === 'text').slice(0, -1).map((item) => item.text).join('')
    const whole = result.content.filter((item) => item.type === 'text').map((item) => item.text).join('')
    t.ok(whole.startsWith(text), 'the text kept is a start of the text')
    t.notOk(/[\ud800-\udbff]$/.test(text), 'no half of a surrogate pair')
    // One more character would not have fit (the cut is as late as it can be): in the item cut,
    // or as the start of the next text item after the last kept whole.
    const texts = result.content.filter((item) => item.type === 'text').map((item) => item.text as string)
    const keptTexts = content.filter((item) => item.type === 'text').slice(0, -1).map((item) => item.text as string)
    const last = keptTexts.length - 1
    const partial = last >= 0 && keptTexts[last] !== texts[last]
    const nextItem = texts[keptTexts.length]
    const longer = partial
      ? bytes(cut) + bytes(String.fromCodePoint((texts[last] as string).codePointAt((keptTexts[last] as string).length) as number)) - 2
      : nextItem === undefined ? Infinity : bytes(cut) + bytes({ type: 'text', text: String.fromCodePoint(nextItem.codePointAt(0) as number) }) + 1
    if (longer <= limit) cutShort++
  }
  t.ok(refused > 0, 'the smallest limits are refused')
  t.equal(cutShort, 0, 'never cut shorter than the limit needs')
})

t.test('a result with no content array: only its marker, when that fits', async (t) => {
  const result = { structuredContent: { rows: 'r'.repeat(50) } }
  const size = bytes(result)
  t.equal(truncated(result, size, 64), undefined)
  const cut = truncated(result, size, 400)
  t.same(cut?.content, [{ type: 'text', text: truncationMarker(size, 400) }])
})
