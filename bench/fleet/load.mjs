// load.mjs — the clients of bench/fleet: multi-turn chat conversations
// through nginx with the official openai npm client (its retries on), half
// the turns streamed. A turn that fails after the client's own retries
// (connection errors, 5xx), or a stream cut before its finish_reason (a
// replica SIGKILLed mid-stream), is sent again, up to ATTEMPTS times; a
// turn that never completes is lost. Bounded: clients start no new turn
// after --seconds. Prints one JSON object.
//
//   node load.mjs --base http://127.0.0.1:18180/v1 --clients 8 --seconds 40
//                 [--turns 4] [--max-tokens 16] [--session 1]
//
// --session 1 sends X-Session-Id (one per conversation), which nginx hashes
// on (deploy/nginx/herd.conf); every conversation opens with its own system
// message so that only its own history is a reusable prefix.
import OpenAI from 'openai';

const opt = { base: 'http://127.0.0.1:18180/v1', clients: 8, seconds: 40, turns: 4,
              'max-tokens': 16, session: 1 };
for (let i = 2; i + 1 < process.argv.length; i += 2) opt[process.argv[i].slice(2)] = process.argv[i + 1];
const ATTEMPTS = 6;
const client = new OpenAI({ baseURL: opt.base, apiKey: 'fleet', maxRetries: 5, timeout: 60_000 });
const stats = { turns: 0, completed: 0, lost: 0, streamed: 0, plain: 0, resent: 0,
                streams_cut_resent: 0, conversations: 0, errors: {} };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const deadline = Date.now() + Number(opt.seconds) * 1000;

async function once(conv, stream) {
  const body = { model: 'herd', messages: conv.messages, max_tokens: Number(opt['max-tokens']),
                 temperature: 0 };
  const ro = Number(opt.session) ? { headers: { 'X-Session-Id': conv.id } } : {};
  if (!stream) {
    const r = await client.chat.completions.create(body, ro);
    if (!r.choices?.[0]?.finish_reason) throw new Error('no finish_reason');
    return r.choices[0].message.content ?? '';
  }
  const s = await client.chat.completions.create({ ...body, stream: true }, ro);
  let text = '', finished = false;
  for await (const chunk of s) {
    text += chunk.choices?.[0]?.delta?.content ?? '';
    if (chunk.choices?.[0]?.finish_reason) finished = true;
  }
  if (!finished) {
    const e = new Error('stream cut before its finish_reason');
    e.cut = true;
    throw e;
  }
  return text;
}

async function turn(conv, stream) {
  stats.turns++;
  stream ? stats.streamed++ : stats.plain++;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      const text = await once(conv, stream);
      stats.completed++;
      return text;
    } catch (e) {
      const key = e.cut ? 'stream cut' : (e.status ? `HTTP ${e.status}` : (e.constructor?.name ?? 'Error'));
      stats.errors[key] = (stats.errors[key] ?? 0) + 1;
      if (attempt === ATTEMPTS) break;
      stats.resent++;
      if (e.cut || (stream && !e.status)) stats.streams_cut_resent++;
      await sleep(250 * attempt);
    }
  }
  stats.lost++;
  return null;
}

async function worker(w) {
  for (let c = 0; Date.now() < deadline; c++) {
    const id = `${Math.random().toString(36).slice(2, 10)}-w${w}c${c}`;
    // The id comes first: what two conversations share is only the template's
    // own opening, so a reused prefix is a conversation's own history.
    const conv = { id, messages: [{ role: 'system',
      content: `${id}: you are a careful assistant; answer in a few words.` }] };
    stats.conversations++;
    for (let t = 0; t < Number(opt.turns) && Date.now() < deadline; t++) {
      conv.messages.push({ role: 'user', content: `Question ${t} of conversation ${id}: tell me more.` });
      const text = await turn(conv, (w + t) % 2 === 0);
      if (text === null) break;
      conv.messages.push({ role: 'assistant', content: text });
    }
  }
}

const t0 = Date.now();
await Promise.all(Array.from({ length: Number(opt.clients) }, (_, w) => worker(w)));
stats.seconds = (Date.now() - t0) / 1000;
console.log(JSON.stringify(stats));
