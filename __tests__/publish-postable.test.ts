import { describe, expect, test } from '@jest/globals'
import { makePostable, neutralizeMentions, plainMarkdown } from '../src/publish/postable.js'

describe('postable text', () => {
  test('breaks mentions of users and teams, not e-mail addresses or code', () => {
    expect(neutralizeMentions('hi @octocat and @org/team, mail a@b.io'))
      .toBe('hi @\u200Doctocat and @\u200Dorg/team, mail a@b.io')
    expect(neutralizeMentions('(@octocat)')).toBe('(@\u200Doctocat)')
  })

  test('redacts before neutralizing', () => {
    const postable = makePostable(t => t.replaceAll('s3cret-value', '***'))
    expect(postable('@me s3cret-value')).toBe('@\u200Dme ***')
  })

  test('removes images and HTML from prose but keeps code as written', () => {
    const text = 'See ![t](https://x.example/p.gif) <b>bold</b>\n'
      + '```html\n<img src=a>\n```\nand `a<b>c`\n[r]: https://x.example/'
    expect(plainMarkdown(text)).toBe('See t (image removed) &lt;b&gt;bold&lt;/b&gt;\n'
      + '```html\n<img src=a>\n```\nand `a<b>c`\n')
  })
})
