// A MindFu client in another language: loads the protos from proto/ at run time (no generated code),
// checks health, lists models, streams a chat completion, and reads an error status.
// Usage: node client.mjs HOST:PORT PROTO_DIR [API_KEY]; prints one JSON object with what it saw.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";

const [target, protoDir, apiKey] = process.argv.slice(2);
const definition = protoLoader.loadSync(["mindfu/v1/chat.proto", "mindfu/v1/models.proto"], {
  includeDirs: [protoDir],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const v1 = grpc.loadPackageDefinition(definition).mindfu.v1;
const credentials = grpc.credentials.createInsecure();
const Health = grpc.makeGenericClientConstructor(healthService, "Health");

function metadata(key) {
  const found = new grpc.Metadata();
  if (key) found.set("authorization", `Bearer ${key}`);
  return found;
}

function unary(client, method, request, key) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata(key), { deadline: Date.now() + 60_000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

function failure(promise) {
  return promise.then(
    () => ({ code: "OK" }),
    (error) => ({ code: grpc.status[error.code], details: error.details }),
  );
}

const health = new Health(target, credentials);
const models = new v1.ModelService(target, credentials);
const chat = new v1.ChatService(target, credentials);

const result = {};
result.health = (await unary(health, "check", { service: "" })).status;
result.chatHealth = (await unary(health, "check", { service: "mindfu.v1.ChatService" })).status;
result.models = (await unary(models, "ListModels", {}, apiKey)).models.map((m) => m.id);
result.unknownModel = await failure(unary(models, "GetModel", { id: "no-such-model" }, apiKey));
result.withoutKey = await failure(unary(models, "ListModels", {}));

const pieces = [];
await new Promise((resolve, reject) => {
  const stream = chat.StreamComplete(
    {
      model: result.models[0],
      messages: [{ role: "ROLE_USER", content: "What is the capital of France? Answer in one sentence." }],
      options: { sampling: { max_tokens: 16, temperature: 0 }, retrieval: { enabled: false } },
    },
    metadata(apiKey),
    { deadline: Date.now() + 120_000 },
  );
  stream.on("data", (piece) => pieces.push(piece));
  stream.on("error", reject);
  stream.on("end", resolve);
});
result.pieces = pieces.length;
result.text = pieces.map((p) => p.content).join("");
result.ids = [...new Set(pieces.map((p) => p.id))];
result.finishReasons = pieces.map((p) => p.finish_reason).filter((r) => r !== "FINISH_REASON_UNSPECIFIED");
result.usage = pieces.filter((p) => p.usage).map((p) => p.usage).pop() ?? null;

console.log(JSON.stringify(result));
for (const client of [health, models, chat]) client.close();
