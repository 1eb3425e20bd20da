// The official openai Node SDK against MindFu's OpenAI-compatible API, run by tests/e2e/test_node_client.py:
// a chat completion, a streamed one, and an error; prints what it saw as one JSON line.
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });
const messages = [{ role: "user", content: "What is the capital of France? Answer in one sentence." }];

const reply = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0 });

const stream = await client.chat.completions.create({
  model,
  messages,
  max_tokens: 24,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
});
const pieces = [];
let usage = null;
let finishReason = null;
for await (const chunk of stream) {
  const choice = chunk.choices[0];
  if (choice?.delta?.content) pieces.push(choice.delta.content);
  if (choice?.finish_reason) finishReason = choice.finish_reason;
  if (chunk.usage) usage = chunk.usage;
}

let unknownModel = null;
try {
  await client.chat.completions.create({ model: "no-such-model", messages, max_tokens: 4 });
} catch (error) {
  unknownModel = { status: error.status, code: error.code, type: error.type, isNotFound: error instanceof OpenAI.NotFoundError };
}

console.log(
  JSON.stringify({
    text: reply.choices[0].message.content,
    object: reply.object,
    finish: reply.choices[0].finish_reason,
    usage: reply.usage,
    streamed: pieces.join(""),
    pieces: pieces.length,
    streamFinish: finishReason,
    streamUsage: usage,
    unknownModel,
  }),
);
