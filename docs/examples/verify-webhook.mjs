// A webhook receiver for Interaction Hub in Node.js (18 or later) without any package: it
// verifies every delivery as the Standard Webhooks specification says and handles each event
// once (docs/consuming.md).
//
//     WEBHOOK_SECRET=whsec_... node verify-webhook.mjs 8000

import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

const TOLERANCE_SECONDS = 5 * 60; // as the reference libraries: refuses replays of old requests

/**
 * The event if the hub sent exactly this body; throws otherwise.
 * @param {string} secret the endpoint's secret, `whsec_` + base64 of the key
 * @param {Buffer} body the raw request body, before any JSON parsing
 * @param {Record<string, string | string[] | undefined>} headers lower-case names (as Node's)
 */
export function verify(secret, body, headers) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) throw new Error("missing webhook headers");
  if (!/^\d+$/.test(timestamp)) throw new Error("bad webhook-timestamp");
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) {
    throw new Error("webhook-timestamp too old or too new");
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest();
  // Space-separated `v1,<base64>` signatures: two while a rotated secret is in its grace period.
  for (const versioned of signatures.split(" ")) {
    const [version, signature] = versioned.split(",");
    if (version !== "v1" || !signature) continue;
    const given = Buffer.from(signature, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected)) {
      return JSON.parse(body.toString("utf8"));
    }
  }
  throw new Error("no matching signature");
}

/** Your code. Events of one customer arrive in order; answer quickly (queue slow work). */
function handle(event) {
  console.log(event.type, event.id);
}

// Delivery is at-least-once: remember the ids handled (in production: a unique key on the event
// id in the same database transaction as the handling).
const handled = new Set();

function receive(request, response) {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    let event;
    try {
      event = verify(process.env.WEBHOOK_SECRET, Buffer.concat(chunks), request.headers);
    } catch {
      response.writeHead(401).end(); // not from the hub, or the secret is wrong: not handled
      return;
    }
    if (!handled.has(event.id)) {
      handle(event);
      handled.add(event.id);
    }
    response.writeHead(204).end();
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  // run as a program, not imported
  const server = createServer(receive);
  server.listen(Number(process.argv[2] ?? 8000), "127.0.0.1", () => {
    console.log(JSON.stringify({ listening: server.address().port }));
  });
}
