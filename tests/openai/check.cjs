// check.cjs — the official `openai` npm client against `herd serve`
// (run by tests/cli_openai.sh). Completes, chats and streams; at temperature 0
// the streamed text must equal the non-streamed text. Exits non-zero on the
// first failure.
'use strict';
const OpenAI = require(process.env.OPENAI_MODULE);
const base = `http://127.0.0.1:${process.env.HERD_PORT}/v1`;
const client = new OpenAI({ baseURL: base, apiKey: 'sekret', maxRetries: 0, timeout: 120000 });
let failed = 0;
function check(ok, what, detail) {
  if (!ok) { failed++; console.error(`FAIL: ${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`); }
}

async function main() {
  const models = await client.models.list();
  const ids = [];
  for await (const m of models) ids.push(m.id);
  check(ids.length === 1, 'models.list', ids);
  const model = ids[0];

  const prompt = 'Once upon a time';
  const c = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 0 });
  check(typeof c.choices[0].text === 'string' && c.choices[0].text.length > 0, 'completion text', c);
  check(c.usage.completion_tokens === 16 && c.choices[0].finish_reason === 'length', 'completion usage', c.usage);
  let streamed = '', usage = null, finish = null;
  const cs = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 0, stream: true,
                                               stream_options: { include_usage: true } });
  for await (const ch of cs) {
    if (ch.choices.length) { streamed += ch.choices[0].text; finish = ch.choices[0].finish_reason || finish; }
    if (ch.usage) usage = ch.usage;
  }
  check(streamed === c.choices[0].text, 'streamed completion equals non-streamed', [streamed, c.choices[0].text]);
  check(usage && usage.completion_tokens === 16 && finish === 'length', 'stream usage and finish', usage);

  const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say hi.' }];
  const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
  const text = chat.choices[0].message.content;
  check(chat.choices[0].message.role === 'assistant' && typeof text === 'string', 'chat message', chat);
  let chatStreamed = '', role = null;
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, stream: true });
  for await (const ch of stream) {
    const d = ch.choices[0] && ch.choices[0].delta;
    if (d && d.role) role = d.role;
    if (d && d.content) chatStreamed += d.content;
  }
  check(role === 'assistant', 'chat stream role');
  check(chatStreamed === text, 'streamed chat equals non-streamed', [chatStreamed, text]);

  try {
    await client.completions.create({ model, prompt, n: 2, max_tokens: 2 });
    check(false, 'n = 2 refused');
  } catch (e) { check(e instanceof OpenAI.BadRequestError && e.status === 400, 'n = 2 is a 400', e.message); }
  try {
    const bad = new OpenAI({ baseURL: base, apiKey: 'wrong', maxRetries: 0 });
    await bad.completions.create({ model, prompt, max_tokens: 2 });
    check(false, 'wrong key refused');
  } catch (e) { check(e instanceof OpenAI.AuthenticationError && e.status === 401, 'wrong key is a 401', e.message); }

  console.log(`openai ${require(process.env.OPENAI_MODULE + '/package.json').version}: completion [${c.choices[0].text}] chat [${text}]`);
}

main().then(() => process.exit(failed ? 1 : 0), (e) => { console.error('FAIL:', e); process.exit(1); });
