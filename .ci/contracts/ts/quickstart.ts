// The contract's quick start through a client generated from openapi/openapi.json
// (openapi-typescript types + openapi-fetch). Type-checked with `tsc --strict`, then run
// against a live gateway: `node dist/quickstart.js http://127.0.0.1:PORT`.
import createClient from "openapi-fetch";
import type { paths } from "./wagate";

const baseUrl = process.argv[2];
if (!baseUrl) throw new Error("usage: quickstart <base url>");

function check<T>(what: string, r: { data?: T; error?: unknown; response: Response }): T {
  if (r.data === undefined) {
    throw new Error(`${what}: HTTP ${r.response.status} ${JSON.stringify(r.error)}`);
  }
  console.log(`ok  ${what} (${r.response.status})`);
  return r.data;
}

async function main(): Promise<void> {
  const api = createClient<paths>({ baseUrl });
  const email = `ts-${Date.now()}@quickstart.test`;

  // Register, then sign in: the access token authenticates everything below.
  check("register", await api.POST("/api/auth/register", {
    body: { email, password: "correct-horse-battery", name: "TS Client", company: "Acme" },
  }));
  const login = check("login", await api.POST("/api/auth/login", {
    body: { email, password: "correct-horse-battery" },
  }));
  const token: string = login.data.accessToken;
  const authed = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

  // A session: create, connect (QR), scan it with the sandbox phone, read its status.
  const created = check("createSession", await authed.POST("/api/v1/whatsapp", {
    body: { name: "Sales line" },
  }));
  const id: string = created.data.id;
  const connect = check("connectSession", await authed.POST("/api/v1/whatsapp/{id}/connect", {
    params: { path: { id } },
  }));
  if (connect.data.status !== "qr_pending") throw new Error(`status ${connect.data.status}`);
  check("sandboxScanQr", await authed.POST("/api/v1/whatsapp/{id}/sandbox/scan", {
    params: { path: { id } },
    body: { phoneNumber: "+14155550100" },
  }));
  for (let i = 0; ; i++) {
    const s = check("getSessionStatus", await authed.GET("/api/v1/whatsapp/{id}/status", {
      params: { path: { id } },
    }));
    if (s.data.connected) break;
    if (i > 100) throw new Error("session never connected");
    await new Promise((r) => setTimeout(r, 50));
  }

  // Send a text and read its status.
  const sent = check("sendTextMessage", await authed.POST("/api/messages/send-text", {
    body: { sessionId: id, to: "+919876543210", text: "Hello from a generated client" },
  }));
  const message = check("getMessage", await authed.GET("/api/messages/{id}", {
    params: { path: { id: sent.data.id } },
  }));
  console.log(`    message ${message.data.id} is ${message.data.status}`);

  // An image, as multipart.
  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    "base64",
  );
  const form = new FormData();
  form.append("sessionId", id);
  form.append("to", "+919876543210");
  form.append("caption", "A pixel");
  form.append("file", new Blob([png], { type: "image/png" }), "pixel.png");
  check("sendImageMessage", await authed.POST("/api/messages/send-image", {
    body: form as unknown as paths["/api/messages/send-image"]["post"]["requestBody"]["content"]["multipart/form-data"],
    bodySerializer: (b) => b as unknown as FormData,
  }));

  // Contacts in both families: the first API, then the second vendor's.
  check("createContact", await authed.POST("/api/contacts", {
    body: { phone: "+14155550123", name: "Ada Lovelace", tags: ["vip"] },
  }));
  const first = check("listContacts", await authed.GET("/api/contacts", {
    params: { query: { page: 1, limit: 20, search: "ada" } },
  }));
  if (first.data.length !== 1) throw new Error(`listContacts found ${first.data.length}`);
  check("createVendorContact", await authed.POST("/api/whatsapp/contacts", {
    body: { userNumber: "+971501234567", userName: "Ahmed Hassan" },
  }));
  const vendor = check("listVendorContacts", await authed.GET("/api/whatsapp/contacts", {
    params: { query: { limit: 10, sortBy: "name", sortOrder: "asc" } },
  }));
  if (vendor.data.total !== 2) throw new Error(`listVendorContacts total ${vendor.data.total}`);
  console.log("quick start passed (TypeScript)");
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
