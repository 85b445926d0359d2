// check.cjs — structured output through `herd serve` with the official
// `openai` npm client (tests/cli_structured.sh starts the server):
//   1. a property test: CASES random JSON Schemas drawn from the supported
//      keywords; each answer (chat and completions, streamed and not) must
//      parse and validate against its schema with an independent validator (ajv);
//   2. client.chat.completions.parse with zodResponseFormat;
//   3. a tool-calling loop: tools -> tool_calls -> role "tool" -> answer,
//      streamed and not;
//   4. bad input: 400s naming the keyword, the type or the grammar position.
'use strict';
const path = require('path');
const dir = process.env.NPM_DIR;
const req = (m) => require(path.join(dir, 'node_modules', m));
const OpenAI = req('openai');
const { zodResponseFormat } = require(path.join(dir, 'node_modules', 'openai', 'helpers', 'zod'));
const { z } = req('zod');
const Ajv = req('ajv');
const addFormats = req('ajv-formats');

const port = process.env.HERD_PORT;
const CASES = parseInt(process.env.CASES || '24', 10);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'none' });
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);

let failures = 0, checks = 0;
function check(cond, what) {
  checks++;
  if (!cond) { failures++; console.error('FAIL:', what); }
}

// ------------------------------------------------------------ random schemas
let seed = parseInt(process.env.SEED || '1', 10);
function rand() { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x80000000; }
function pick(a) { return a[Math.floor(rand() * a.length)]; }
function int(lo, hi) { return lo + Math.floor(rand() * (hi - lo + 1)); }

function leaf() {
  switch (int(0, 9)) {
    case 0: { const s = { type: 'string' }; if (rand() < 0.7) s.maxLength = int(0, 8); if (rand() < 0.3) s.minLength = int(0, s.maxLength ?? 3); return s; }
    case 1: return { type: 'string', format: pick(['date', 'time', 'date-time', 'uuid']) };
    case 2: return { type: 'string', pattern: pick(['^[a-z]{1,5}$', '^\\d{3}-\\d{2}$', '^(yes|no)$', '^[A-Z][a-z]*$', 'ab', '^x?y+$']) };
    case 3: { const s = { type: 'integer' }; if (rand() < 0.6) s.minimum = int(-50, 50); if (rand() < 0.6) s.maximum = (s.minimum ?? -50) + int(0, 200); if (rand() < 0.2) { s.exclusiveMaximum = (s.maximum ?? 100) + 1; } return s; }
    case 4: return { type: 'number' };
    case 5: return { type: 'boolean' };
    case 6: return { type: 'null' };
    case 7: return { enum: [pick(['red', 'green']), int(0, 9), null, pick([true, false])] };
    case 8: return { const: pick(['fixed', 42, { k: [1, 'v'] }]) };
    default: return { type: ['string', 'null'], maxLength: int(0, 6) };
  }
}

function schema(depth) {
  const r = rand();
  if (depth <= 0 || r < 0.35) return leaf();
  if (r < 0.6) {
    const n = int(1, 3), props = {}, names = [];
    for (let i = 0; i < n; i++) { const k = pick(['id', 'name', 'when', 'n', 'tags', 'ok', 'a b', 'é']) + (i ? i : ''); props[k] = schema(depth - 1); names.push(k); }
    const s = { type: 'object', properties: props, required: names.filter(() => rand() < 0.6) };
    if (rand() < 0.7) s.additionalProperties = false;
    return s;
  }
  if (r < 0.8) {
    const s = { type: 'array', items: schema(depth - 1) };
    if (rand() < 0.5) s.minItems = int(0, 2);
    s.maxItems = (s.minItems ?? 0) + int(0, 2);
    return s;
  }
  if (r < 0.9) return { anyOf: [schema(depth - 1), leaf()] };
  return { oneOf: [{ type: 'integer', minimum: 0, maximum: 9 }, { type: 'string', maxLength: 4 }] };
}

function withDefs(s) {
  if (rand() < 0.15) return { $defs: { item: s }, type: 'object', properties: { item: { $ref: '#/$defs/item' } }, required: ['item'], additionalProperties: false };
  return s;
}

async function raw(p, body) {
  const r = await fetch(`http://127.0.0.1:${port}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: r.headers.get('content-type')?.includes('json') ? await r.json() : null, text: r.headers.get('content-type')?.includes('json') ? null : await r.text() };
}

// the text of a streamed completion (SSE) from the raw endpoint
function sseText(text, chat) {
  let out = '';
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const c = JSON.parse(line.slice(6)).choices?.[0];
    if (!c) continue;
    out += chat ? (c.delta?.content ?? '') : (c.text ?? '');
  }
  return out;
}

async function propertyTest() {
  let ok = 0;
  for (let i = 0; i < CASES; i++) {
    const s = withDefs(schema(2));
    const mode = i % 4; // chat, chat+stream, completions (json_schema), completions+stream (response_format)
    let text;
    try {
      if (mode < 2) {
        const body = { model: 'x', messages: [{ role: 'user', content: 'Answer in JSON.' }], max_tokens: 160, temperature: 1, seed: i,
          response_format: { type: 'json_schema', json_schema: { name: 'case', strict: true, schema: s } } };
        if (mode === 0) text = (await client.chat.completions.create(body)).choices[0].message.content;
        else { text = ''; for await (const ch of await client.chat.completions.create({ ...body, stream: true })) text += ch.choices[0]?.delta?.content ?? ''; }
      } else {
        const body = { prompt: 'And God said', max_tokens: 160, temperature: 1, seed: i, stream: mode === 3 };
        if (mode === 2) body.json_schema = s; else body.response_format = { type: 'json_schema', json_schema: { name: 'c', schema: s } };
        const r = await raw('/v1/completions', body);
        check(r.status === 200, `case ${i}: status ${r.status} ${JSON.stringify(r.json)}`);
        text = mode === 2 ? r.json?.choices?.[0]?.text : sseText(r.text, false);
      }
      let v; try { v = JSON.parse(text); } catch (e) { check(false, `case ${i}: not JSON: ${text}\n schema ${JSON.stringify(s)}`); continue; }
      const valid = ajv.validate(s, v);
      check(valid, `case ${i}: ${JSON.stringify(ajv.errors)}\n schema ${JSON.stringify(s)}\n output ${text}`);
      if (valid) ok++;
      if ((i + 1) % 25 === 0) console.log(`property test: ${ok}/${i + 1} so far`);
    } catch (e) { check(false, `case ${i}: ${e}\n schema ${JSON.stringify(s)}`); }
  }
  console.log(`property test: ${ok}/${CASES} outputs parse and validate (ajv)`);
}

async function zodTest() {
  const Person = z.object({ name: z.string().max(12), age: z.number().int().min(0).max(120), tags: z.array(z.enum(['a', 'b'])).max(3), nick: z.string().nullable() });
  const c = await client.chat.completions.parse({ model: 'x', messages: [{ role: 'user', content: 'A person, please.' }], max_tokens: 200, seed: 7,
    response_format: zodResponseFormat(Person, 'person') });
  const p = c.choices[0].message.parsed;
  check(p && typeof p.name === 'string' && Number.isInteger(p.age) && Array.isArray(p.tags), `zod parse: ${JSON.stringify(c.choices[0].message)}`);
  check(Person.safeParse(p).success, `zod validates: ${JSON.stringify(p)}`);
}

const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'], additionalProperties: false } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 6 } }, required: ['zone'] } } }];

async function toolLoop(stream) {
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
  let msg, finish;
  if (!stream) {
    const c = await client.chat.completions.create({ model: 'x', messages, tools, tool_choice: 'required', max_tokens: 120, seed: 3 });
    msg = c.choices[0].message; finish = c.choices[0].finish_reason;
  } else {
    const calls = [];
    for await (const ch of await client.chat.completions.create({ model: 'x', messages, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 120, seed: 4, stream: true })) {
      const d = ch.choices[0]?.delta; if (ch.choices[0]?.finish_reason) finish = ch.choices[0].finish_reason;
      for (const tc of d?.tool_calls ?? []) {
        calls[tc.index] = calls[tc.index] || { id: tc.id, type: 'function', function: { name: '', arguments: '' } };
        if (tc.function?.name) calls[tc.index].function.name += tc.function.name;
        if (tc.function?.arguments) calls[tc.index].function.arguments += tc.function.arguments;
      }
    }
    msg = { role: 'assistant', content: null, tool_calls: calls };
  }
  check(finish === 'tool_calls', `tools ${stream ? 'stream' : ''}: finish_reason ${finish}`);
  check(msg.tool_calls?.length >= 1, `tools: tool_calls ${JSON.stringify(msg)}`);
  for (const tc of msg.tool_calls ?? []) {
    const t = tools.find((x) => x.function.name === tc.function.name);
    check(t, `tools: unknown function ${tc.function.name}`);
    if (stream) check(tc.function.name === 'get_weather', 'tools: the named choice');
    let args; try { args = JSON.parse(tc.function.arguments); } catch (e) { check(false, `tools: arguments not JSON: ${tc.function.arguments}`); continue; }
    check(t && ajv.validate(t.function.parameters, args), `tools: arguments ${tc.function.arguments}: ${JSON.stringify(ajv.errors)}`);
  }
  messages.push(msg);
  for (const tc of msg.tool_calls ?? []) messages.push({ role: 'tool', tool_call_id: tc.id, content: '{"sky":"clear","c":21}' });
  const a = await client.chat.completions.create({ model: 'x', messages, tools, tool_choice: 'none', max_tokens: 20, seed: 5 });
  check(typeof a.choices[0].message.content === 'string' && !a.choices[0].message.tool_calls, `tools: answer after the tool ${JSON.stringify(a.choices[0])}`);
}

async function badInput() {
  const chat = (extra) => raw('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 4, ...extra });
  let r = await chat({ response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object', allOf: [] } } } });
  check(r.status === 400 && /allOf is not supported/.test(r.json?.error?.message) && r.json.error.param === 'response_format', `allOf: ${JSON.stringify(r.json)}`);
  r = await chat({ response_format: { type: 'yaml' } });
  check(r.status === 400 && /yaml/.test(r.json?.error?.message), `unknown type: ${JSON.stringify(r.json)}`);
  r = await chat({ grammar: 'root ::= "a" |\n  [b-' });
  check(r.status === 400 && /line 2, column 3/.test(r.json?.error?.message), `grammar: ${JSON.stringify(r.json)}`);
  r = await chat({ json_schema: { type: 'string', format: 'email' } });
  check(r.status === 400 && /format "email"/.test(r.json?.error?.message), `format: ${JSON.stringify(r.json)}`);
  r = await chat({ tools, tool_choice: { type: 'function', function: { name: 'nope' } } });
  check(r.status === 400 && r.json?.error?.param === 'tool_choice', `tool_choice: ${JSON.stringify(r.json)}`);
  r = await chat({ tools, response_format: { type: 'json_object' }, tool_choice: 'required' });
  check(r.status === 400 && r.json?.error?.param === 'tools', `tools + response_format: ${JSON.stringify(r.json)}`);
  r = await chat({ grammar: 'root ::= "a"', json_schema: { type: 'string' } });
  check(r.status === 400, `two constraints: ${JSON.stringify(r.json)}`);
  r = await chat({ response_format: { type: 'json_object' }, max_tokens: 40 });
  let o; try { o = JSON.parse(r.json.choices[0].message.content); } catch (e) { o = undefined; }
  check(r.status === 200 && o && typeof o === 'object' && !Array.isArray(o), `json_object: ${JSON.stringify(r.json)}`);
}

(async () => {
  try {
    await badInput();
    await zodTest();
    await toolLoop(false);
    await toolLoop(true);
    await propertyTest();
  } catch (e) { check(false, `exception: ${e.stack || e}`); }
  console.log(`${checks} checks, ${failures} failed`);
  process.exit(failures ? 1 : 0);
})();
