// load.mjs — the clients of bench/fleet: multi-turn chat conversations
// through nginx with the official openai npm client (its retries on), half
// the turns streamed. A turn that fails after the client's own retries
// (connection errors, 5xx), or a stream cut before its finish_reason (a
// replica SIGKILLed mid-stream), is sent again, up to ATTEMPTS times; a
// turn that never completes is lost. The openai client does not retry a
// stream once it has begun (no client library can: the reply so far is the
// application's); the application sends the turn again, as this one does.
// Prints one JSON object.
//
//   node load.mjs --base http://127.0.0.1:18180/v1 --clients 8 --seconds 40
//                 [--turns 4] [--max-tokens 16] [--session 1]
//                 [--conversations 0] [--think-ms 0] [--seed 1] [--own-system 0]
//                 [--doc-words 0] [--live FILE]
//
// Each client holds one conversation at a time, so --clients is the number
// of conversations going on at once. Every conversation opens with the same
// system prompt (as an application's do) or, with --own-system 1, with a
// system prompt of its own: a profile of its user and what the application
// remembers of them (as assistants with memory send; about as long as the
// common one, and sharing nothing with the others' but the chat template's
// few tokens); --doc-words N adds to it a document of N words of its own (the
// notes an assistant keeps on its user, or a file the user works on), for
// loads whose prompts are mostly a long prefix. Then --turns user messages, each
// sent with the whole history and answered with up to --max-tokens tokens
// (drawn between half and all of it per turn), with a pause of up to
// --think-ms between turns (the user reading and typing). Messages, reply
// lengths, pauses and conversation ids come from --seed, so two runs with the
// same seed send the same load (greedy decoding: the same replies too).
//
// Bounded: with --conversations N each client holds N conversations and
// stops; --seconds is then only a safety cap (turns not started by then are
// counted in "unsent"). With --conversations 0 clients start conversations
// until --seconds.
//
// --session 1 sends X-Session-Id (one per conversation), which nginx hashes
// on (deploy/nginx/herd.conf). The totals of usage.prompt_tokens and
// usage.prompt_tokens_details.cached_tokens over the completed turns are
// reported as the clients saw them (prompt_tokens, cached_tokens), and so is
// how many turns after a conversation's first (next_turns) found at least
// the whole prompt of the turn before cached (history_cached): the turn
// reached a slot that still held its conversation.
//
// nginx names the replica that answered in an X-Herd-Upstream header
// (bench/fleet/run adds it; deploy/ does not need it): "replicas" counts the
// conversations each replica served the first turn of. With --live FILE the
// client keeps in FILE one line per replica, "ADDRESS N": N streams from it
// have delivered tokens and not yet ended, so that the runner can kill a
// replica while a stream from it is under way. A stream that has delivered
// a token and then ends without a finish_reason or with an error was cut
// mid-way: streams_cut counts those turns, streams_cut_completed those that
// were then sent again and completed, streams_cut_lost those that were not;
// streams_cut_conn those cut by their connection's end (a replica killed
// under them) rather than by an error event of the server (a drain's
// timeout).
import { writeFileSync, renameSync } from 'node:fs';
import OpenAI from 'openai';

const opt = { base: 'http://127.0.0.1:18180/v1', clients: 8, seconds: 40, turns: 4,
              'max-tokens': 16, session: 1, conversations: 0, 'think-ms': 0, seed: 1,
              'own-system': 0, 'doc-words': 0, live: '' };
for (let i = 2; i + 1 < process.argv.length; i += 2) opt[process.argv[i].slice(2)] = process.argv[i + 1];
for (const k of Object.keys(opt)) if (k !== 'base' && k !== 'live') opt[k] = Number(opt[k]);
const ATTEMPTS = 6;
const client = new OpenAI({ baseURL: opt.base, apiKey: 'fleet', maxRetries: 5, timeout: 60_000 });
const stats = { turns: 0, completed: 0, lost: 0, unsent: 0, streamed: 0, plain: 0, resent: 0,
                streams_cut: 0, streams_cut_completed: 0, streams_cut_lost: 0, streams_cut_conn: 0,
                conversations: 0, prompt_tokens: 0, cached_tokens: 0, next_turns: 0,
                history_cached: 0, replicas: {}, errors: {} };
const live = {};

// Streams under way per replica, written whole and renamed into place so that
// the runner never reads half a file.
function setLive(addr, d) {
  live[addr] = (live[addr] ?? 0) + d;
  if (!opt.live) return;
  const text = Object.entries(live).map(([a, n]) => `${a} ${n}\n`).join('');
  writeFileSync(`${opt.live}.tmp`, text);
  renameSync(`${opt.live}.tmp`, opt.live);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const deadline = Date.now() + opt.seconds * 1000;

// mulberry32: a small seeded generator, one stream per client.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYSTEM = 'You are the support assistant of a small hardware shop that sells tools, '
  + 'garden supplies and paint. Answer in plain language and keep answers short. When a '
  + 'customer asks about an order, ask for the order number first. Never promise delivery '
  + 'dates; say that the shop sends a tracking link by mail. For returns, explain that '
  + 'unused items can be brought back within thirty days with the receipt. If a question '
  + 'is about safety, such as ladders, power tools or chemicals, advise reading the '
  + 'manual and, when in doubt, asking a professional.';
const WORDS = ('ladder drill paint hose rake saw hammer glue tile brush screw bolt nail '
  + 'fence shed lawn seed soil pump valve pipe timber plank varnish primer roller bucket '
  + 'order refund receipt delivery colour size price stock weekend garden kitchen garage')
  .split(' ');
const OPENERS = ['Can you tell me about', 'I need help with', 'What do you think of',
                 'Is it safe to use', 'How long does it take to get', 'Do you still have'];

const NAMES = ['Ada', 'Bram', 'Chiara', 'Dmitri', 'Elif', 'Farid', 'Greta', 'Hiro', 'Ines',
               'Jonas', 'Kaja', 'Luis', 'Mina', 'Nils', 'Olu', 'Priya'];
const TRAITS = ('prefers metric sizes, owns a small garden, is repainting a kitchen, has a dog, '
  + 'rents a flat, builds furniture, asked about ladders before, returned a drill last month, '
  + 'likes short answers, reads the manuals, works weekends, has a wooden fence, keeps bees, '
  + 'grows tomatoes, paints miniatures, is allergic to solvents, lives near the shop, '
  + 'orders online, pays on delivery, speaks some German').split(', ');

// A system prompt of the conversation's own: the user's profile and memory,
// in an order drawn for this conversation, so that two conversations part
// after the first few words.
function ownSystem(r, id) {
  const name = NAMES[Math.floor(r() * NAMES.length)];
  const facts = [...TRAITS].sort(() => r() - 0.5).slice(0, 12);
  const words = Array.from({ length: 24 }, () => WORDS[Math.floor(r() * WORDS.length)]);
  return `Customer ${name} (${id}). What we know: ${name} ${facts.join('; ')}. `
    + `Recent orders and questions: ${words.join(' ')}. Help ${name} with the shop's tools, `
    + 'garden supplies and paint, in plain language and briefly.';
}

// A document of the conversation's own, n words long.
function notes(r, n) {
  const pool = WORDS.concat(TRAITS.join(' ').split(' '));
  const w = Array.from({ length: n }, () => pool[Math.floor(r() * pool.length)]);
  return ` Notes and documents on file: ${w.join(' ')}.`;
}

function userMessage(r) {
  const n = 6 + Math.floor(r() * 14);
  const w = Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]);
  return `${OPENERS[Math.floor(r() * OPENERS.length)]} ${w.join(' ')}?`;
}

// nginx lists every replica it tried ("A, B"): the last one answered.
const lastUpstream = (response) =>
  (response.headers.get('x-herd-upstream') ?? '?').split(/[,:]\s+/).pop();

async function once(conv, stream, maxTokens) {
  const body = { model: 'herd', messages: conv.messages, max_tokens: maxTokens, temperature: 0 };
  const ro = opt.session ? { headers: { 'X-Session-Id': conv.id } } : {};
  if (!stream) {
    const { data: r, response } = await client.chat.completions.create(body, ro).withResponse();
    if (!r.choices?.[0]?.finish_reason) throw new Error('no finish_reason');
    return { text: r.choices[0].message.content ?? '', usage: r.usage,
             upstream: lastUpstream(response) };
  }
  const { data: s, response } = await client.chat.completions
    .create({ ...body, stream: true, stream_options: { include_usage: true } }, ro).withResponse();
  const upstream = lastUpstream(response);
  let text = '', finished = false, usage, tokens = 0;
  try {
    for await (const chunk of s) {
      const piece = chunk.choices?.[0]?.delta?.content ?? '';
      if (piece && tokens++ === 0) setLive(upstream, +1);
      text += piece;
      if (chunk.choices?.[0]?.finish_reason) finished = true;
      if (chunk.usage) usage = chunk.usage;
    }
  } catch (e) {
    e.cut = tokens > 0; // an error after tokens came: cut mid-way
    // the server's error event arrives as an APIError; anything else is the
    // connection's end
    e.conn = e.cut && (!(e instanceof OpenAI.APIError) || e instanceof OpenAI.APIConnectionError);
    throw e;
  } finally {
    if (tokens > 0) setLive(upstream, -1);
  }
  if (!finished) {
    const e = new Error('stream cut before its finish_reason');
    e.cut = tokens > 0;
    e.conn = e.cut; // the body ended with no error event and no finish_reason
    e.unfinished = true;
    throw e;
  }
  return { text, usage, upstream };
}

async function turn(conv, stream, maxTokens) {
  stats.turns++;
  if (conv.prev !== undefined) stats.next_turns++;
  stream ? stats.streamed++ : stats.plain++;
  let cut = false;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      const { text, usage, upstream } = await once(conv, stream, maxTokens);
      stats.completed++;
      if (cut) stats.streams_cut_completed++;
      if (conv.prev === undefined) stats.replicas[upstream] = (stats.replicas[upstream] ?? 0) + 1;
      stats.prompt_tokens += usage?.prompt_tokens ?? 0;
      const cached = usage?.prompt_tokens_details?.cached_tokens ?? 0;
      stats.cached_tokens += cached;
      if (conv.prev !== undefined && cached >= conv.prev) stats.history_cached++;
      conv.prev = usage?.prompt_tokens ?? Infinity;
      return text;
    } catch (e) {
      const key = e.cut ? 'stream cut mid-way' : e.unfinished ? 'stream without tokens'
        : (e.status ? `HTTP ${e.status}` : (e.constructor?.name ?? 'Error'));
      stats.errors[key] = (stats.errors[key] ?? 0) + 1;
      if (e.cut && !cut) stats.streams_cut++;
      if (e.conn && !cut) stats.streams_cut_conn++;
      cut ||= Boolean(e.cut);
      if (attempt === ATTEMPTS) break;
      stats.resent++;
      await sleep(250 * attempt);
    }
  }
  stats.lost++;
  if (cut) stats.streams_cut_lost++;
  return null;
}

async function worker(w) {
  const r = rng(opt.seed * 7919 + w);
  const more = (c) => (opt.conversations ? c < opt.conversations : Date.now() < deadline);
  for (let c = 0; more(c); c++) {
    const id = `s${opt.seed}-w${w}c${c}-${Math.floor(r() * 1e9).toString(36)}`;
    let system = opt['own-system'] ? ownSystem(r, id) : SYSTEM;
    if (opt['doc-words']) system += notes(r, opt['doc-words']);
    const conv = { id, messages: [{ role: 'system', content: system }] };
    stats.conversations++;
    for (let t = 0; t < opt.turns; t++) {
      conv.messages.push({ role: 'user', content: userMessage(r) });
      const maxTokens = Math.ceil(opt['max-tokens'] * (0.5 + 0.5 * r()));
      const think = r() * opt['think-ms'];
      if (Date.now() >= deadline) {
        stats.unsent += opt.turns - t;
        break;
      }
      const text = await turn(conv, (w + t) % 2 === 0, maxTokens);
      if (text === null) break;
      conv.messages.push({ role: 'assistant', content: text });
      if (t + 1 < opt.turns) await sleep(think);
    }
  }
}

const t0 = Date.now();
await Promise.all(Array.from({ length: opt.clients }, (_, w) => worker(w)));
stats.seconds = (Date.now() - t0) / 1000;
console.log(JSON.stringify(stats));
