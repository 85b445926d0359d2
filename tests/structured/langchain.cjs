// langchain.cjs — LangChain's ChatOpenAI against `herd serve`:
// withStructuredOutput (a zod schema) and bindTools (a tool call back).
'use strict';
const path = require('path');
const dir = process.env.NPM_DIR;
const req = (m) => require(path.join(dir, 'node_modules', m));
const { ChatOpenAI } = req('@langchain/openai');
const { z } = req('zod');

let failures = 0, checks = 0;
function check(cond, what) { checks++; if (!cond) { failures++; console.error('FAIL:', what); } }

(async () => {
  try {
    const llm = new ChatOpenAI({ model: 'herd', apiKey: 'none', maxTokens: 160, temperature: 1,
      configuration: { baseURL: `http://127.0.0.1:${process.env.HERD_PORT}/v1` } });
    const Person = z.object({ name: z.string().max(10).describe('the name'), age: z.number().int().min(0).max(99) });
    for (const method of ['jsonSchema', 'functionCalling']) {
      const p = await llm.withStructuredOutput(Person, { name: 'person', method }).invoke('Describe a person.');
      check(Person.safeParse(p).success, `withStructuredOutput (${method}): ${JSON.stringify(p)}`);
    }
    const weather = { name: 'get_weather', description: 'Weather of a city',
      schema: z.object({ city: z.string().max(10) }) };
    const bound = llm.bindTools([weather], { tool_choice: 'get_weather' });
    const m = await bound.invoke('Weather in Paris?');
    check(m.tool_calls?.length >= 1 && m.tool_calls[0].name === 'get_weather' && typeof m.tool_calls[0].args?.city === 'string',
      `bindTools: ${JSON.stringify(m.tool_calls)}`);
  } catch (e) { check(false, `exception: ${e.stack || e}`); }
  console.log(`langchain: ${checks} checks, ${failures} failed`);
  process.exit(failures ? 1 : 0);
})();
