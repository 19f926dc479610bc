// The live-chat widget in Debian's chromium. Like agent-app.mjs it starts
// no desk itself: web_browser.rs runs `tierdesk demo` and passes
// TIERDESK_URL, TIERDESK_EMAIL/PASSWORD (an admin), TIERDESK_EMAIL2 (an
// agent) and SCREENSHOT_DIR. This script serves a customer's web page on
// another 127.0.0.1 port, with CSS written to break embedded widgets, and
// embeds the widget with one script tag. The visitor writes; the agent
// sees the chat ticket arrive live in the agent app and replies; the
// visitor sees the reply. Then the answer bot: one visitor's VPN question
// is answered from the demo article (quote, link, "that solved it" counted
// as a deflection); another asks for a person and the agent gets the chat
// ticket live with the bot transcript. Last, with every agent away, a new
// visitor gets the "no one is available" form: the email address is
// required and checked, the message is kept while it is corrected, and the
// visitor sees where the reply will be mailed; the agent finds the chat
// ticket with that requester. Exits non-zero on the first failed check.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.TIERDESK_URL;
const email = process.env.TIERDESK_EMAIL;
const password = process.env.TIERDESK_PASSWORD;
const email2 = process.env.TIERDESK_EMAIL2;
const shots = process.env.SCREENSHOT_DIR || "screenshots";
if (!base || !email || !password || !email2) {
  console.error("set TIERDESK_URL, TIERDESK_EMAIL, TIERDESK_PASSWORD and TIERDESK_EMAIL2");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const TIMEOUT = 15000;
let passed = 0;
let failed = 0;

async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed += 1;
    console.log(`not ok - ${name}\n${error && error.stack ? error.stack : error}`);
    throw error;
  }
}

async function apiSession() {
  const response = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  assert.equal(response.status, 200, "API login");
  const cookie = response.headers.get("set-cookie").split(";")[0];
  const { csrf_token } = await response.json();
  return async (method, path, body) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { "content-type": "application/json", cookie, "x-csrf-token": csrf_token },
      body: JSON.stringify(body),
    });
    const json = await r.json();
    assert.ok(r.ok, `${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
    return json;
  };
}

const api = await apiSession();
const widget = await api("POST", "/api/v1/chat/widget-keys", { name: "Test shop" });

// The customer's site: another origin, hostile CSS.
const hostile = `
  * { font-family: "Comic Sans MS", cursive !important; color: #f0f !important; }
  div, button, textarea, input, form { display: none !important; }
  body * { position: static !important; transform: scale(0.2) !important; }
  tierdesk-chat, [data-tierdesk-chat] { display: none !important; opacity: 0 !important; }
`;
const hostPage = `<!doctype html><html><head><title>Shop</title><style>${hostile}</style></head>
<body><h1>Welcome to the shop</h1><p>Buy things.</p>
<script src="${base}/widget.js" data-key="${widget.key}" async></script></body></html>`;
const server = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end(hostPage);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const shop = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});

let exitCode = 0;
try {
  const agentContext = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const agent = await agentContext.newPage();
  agent.setDefaultTimeout(TIMEOUT);
  const visitorContext = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  const visitor = await visitorContext.newPage();
  visitor.setDefaultTimeout(TIMEOUT);
  const errors = [];
  visitor.on("pageerror", (error) => errors.push(error.message));
  const text = `My parcel is lost ${Date.now()}`;

  await step("the agent signs in and watches the inbox", async () => {
    await agent.goto(`${base}/inbox`);
    await agent.getByLabel("Email").fill(email2);
    await agent.getByLabel("Password").fill(password);
    await Promise.all([agent.waitForURL(/\/inbox$/), agent.getByRole("button", { name: "Sign in" }).click()]);
    await agent.locator("html[data-live=open]").waitFor({ state: "attached" });
  });

  await step("the widget shows on a hostile page and the visitor writes", async () => {
    await visitor.goto(shop);
    const launch = visitor.getByRole("button", { name: "Chat with us" });
    await launch.waitFor({ state: "visible" });
    const box = await launch.boundingBox();
    assert.ok(box && box.width > 60 && box.height > 25, `launcher is full size: ${JSON.stringify(box)}`);
    const font = await launch.evaluate((el) => getComputedStyle(el).fontFamily);
    assert.doesNotMatch(font, /Comic/, "host CSS does not reach the widget");
    await launch.click();
    await visitor.getByLabel("Name").fill("Vera Visitor");
    await visitor.getByLabel("Email").fill("vera@shop.example");
    await visitor.getByRole("button", { name: "Start chat" }).click();
    assert.ok(await visitor.getByRole("button", { name: "Start chat" }).isHidden(), "the start form goes away");
    await visitor.getByRole("textbox", { name: "Message" }).fill(text);
    await visitor.getByRole("button", { name: "Send", exact: true }).click();
    await visitor.locator(".msg.visitor:not(.pending)", { hasText: text }).waitFor();
    await visitor.screenshot({ path: join(shots, "chat-visitor.png") });
  });

  await step("the agent app shows the chat live and the agent replies", async () => {
    const row = agent.locator("#ticket-rows tr", { hasText: text });
    await row.waitFor();
    await Promise.all([agent.waitForURL(/\/tickets\/\d+$/), row.locator("a").first().click()]);
    await agent.locator("#timeline li", { hasText: text }).first().waitFor();
    await agent.locator("#kind-reply").check();
    await agent.locator("#body").pressSequentially("We found", { delay: 20 });
    await visitor.getByText("Support is typing\u2026").waitFor();
    await agent.locator("#body").fill("We found it, it arrives tomorrow.");
    await Promise.all([agent.waitForURL(/\/tickets\/\d+$/), agent.getByRole("button", { name: "Send" }).click()]);
    await agent.locator("#timeline li.entry-reply", { hasText: "We found it" }).waitFor();
    await agent.screenshot({ path: join(shots, "chat-agent.png"), fullPage: true });
  });

  await step("the visitor sees the reply", async () => {
    await visitor.locator(".msg.agent", { hasText: "We found it, it arrives tomorrow." }).waitFor();
    await visitor.screenshot({ path: join(shots, "chat-visitor-reply.png") });
  });

  await step("the visitor sends a file; the agent's ticket page shows it live", async () => {
    await agent.locator("html[data-live=open]").waitFor({ state: "attached" });
    await visitor.locator("input.file").setInputFiles({
      name: "order note.txt",
      mimeType: "text/plain",
      buffer: Buffer.from("order 1234"),
    });
    await visitor.locator(".msg.visitor:not(.pending)", { hasText: "order note.txt" }).waitFor();
    await agent.locator("#timeline li", { hasText: "Sent a file: order note.txt" }).waitFor();
  });

  await step("a reload resumes the conversation without duplicates", async () => {
    await visitor.reload();
    await visitor.getByRole("button", { name: "Chat with us" }).click();
    await visitor.locator(".msg.agent", { hasText: "We found it" }).waitFor();
    assert.equal(await visitor.locator(".msg", { hasText: text }).count(), 1);
    assert.equal(await visitor.locator(".msg.agent").count(), 1);
    assert.equal(await visitor.locator(".msg.visitor").count(), 2);
    assert.deepEqual(errors, []);
  });

  // The answer bot goes first: new visitors (fresh contexts, so no saved
  // conversation) ask before any person is involved.
  async function newVisitor(name, mail) {
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(shop);
    await page.getByRole("button", { name: "Chat with us" }).click();
    await page.getByLabel("Name").fill(name);
    await page.getByLabel("Email").fill(mail);
    await page.getByRole("button", { name: "Start chat" }).click();
    return { context, page };
  }
  async function askBot(page, question) {
    await page.getByRole("textbox", { name: "Message" }).fill(question);
    await page.getByRole("button", { name: "Send", exact: true }).click();
    const answer = page.locator(".msg.bot").last();
    await answer.waitFor();
    return answer;
  }
  const vpnTitle = "Reset your VPN password";
  const articles = await api("GET", "/api/v1/kb/articles?limit=100");
  const vpnArticle = articles.articles.find((a) => a.slug === "reset-vpn-password");
  assert.ok(vpnArticle, "the demo has the VPN password article");
  const squash = (t) => t.replace(/[*_`#>]+/g, "").replace(/\s+/g, " ").trim();

  await step("the bot answers a VPN question with a quote and a link to the article", async () => {
    const before = await api("GET", "/api/v1/kb/stats");
    const { context, page } = await newVisitor("Bo Bot", "");
    const answer = await askBot(page, "how do I reset my VPN password?");
    const quote = answer.locator("blockquote").first();
    await quote.waitFor();
    const quoted = squash(await quote.innerText());
    assert.ok(quoted.length > 40, `a real passage is quoted: ${quoted}`);
    assert.ok(squash(vpnArticle.body).includes(quoted), `the quote is the article's own words: ${quoted}`);
    const link = answer.getByRole("link", { name: new RegExp(vpnTitle) }).first();
    const href = await link.getAttribute("href");
    assert.match(href, new RegExp(`^${base}/help/a/reset-vpn-password(#|$)`), "the link points at the desk's help center");
    assert.equal(await answer.locator("blockquote").count() <= 2, true, "at most two passages");
    await page.screenshot({ path: join(shots, "widget-bot-answer.png") });

    const [article] = await Promise.all([context.waitForEvent("page"), link.click()]);
    await article.waitForLoadState();
    assert.equal(await article.locator("h1").innerText(), vpnTitle, "the link opens the article");
    await article.close();

    await answer.getByRole("button", { name: "That solved it" }).click();
    await page.locator(".note", { hasText: "Glad that helped!" }).waitFor();
    const after = await api("GET", "/api/v1/kb/stats");
    assert.equal(after.deflected, before.deflected + 1, "the deflection is recorded");
    assert.equal(after.handed_over, before.handed_over, "no hand-over");
    await context.close();
  });

  await step("a visitor asks for a person; the agent sees the chat ticket live with the bot transcript", async () => {
    await agent.goto(`${base}/inbox`);
    await agent.locator("html[data-live=open]").waitFor({ state: "attached" });
    const stamp = `${Date.now()}`;
    const question = "how do I reset my VPN password?";
    const { context, page } = await newVisitor(`Hanna ${stamp}`, `hanna${stamp}@shop.example`);
    const answer = await askBot(page, question);
    await answer.getByRole("button", { name: "Talk to a person" }).click();
    await page.locator(".msg.visitor:not(.pending)", { hasText: "I would like to talk to a person." }).waitFor();
    assert.equal(await page.locator(".msg.visitor.pending").count(), 0, "the question and the request are acknowledged");
    await page.screenshot({ path: join(shots, "widget-handover.png") });

    const row = agent.locator("#ticket-rows tr", { hasText: stamp });
    await row.waitFor();
    await Promise.all([agent.waitForURL(/\/tickets\/\d+$/), row.locator("a").first().click()]);
    await agent.locator("#timeline li", { hasText: question }).first().waitFor();
    const note = agent.locator("#timeline li", { hasText: "Conversation with the answer bot" });
    await note.waitFor();
    const noteText = await note.innerText();
    assert.match(noteText, /Articles already shown:/);
    assert.ok(noteText.includes(vpnTitle), `the note lists the article shown: ${noteText}`);
    await agent.screenshot({ path: join(shots, "widget-handover-agent.png"), fullPage: true });

    await agent.locator("#kind-reply").check();
    await agent.locator("#body").fill("Hi Hanna, I will reset it for you now.");
    await Promise.all([agent.waitForURL(/\/tickets\/\d+$/), agent.getByRole("button", { name: "Send" }).click()]);
    await page.locator(".msg.agent", { hasText: "I will reset it for you now." }).waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });

  await step("with no agent available, a visitor leaves a message and an email address", async () => {
    const agents = await api("GET", "/api/v1/agents");
    const list = agents.items || agents.agents || agents;
    for (const a of list) {
      if (a.active && a.available) await api("PATCH", `/api/v1/agents/${a.id}`, { available: false });
    }
    const stamp = `${Date.now()}`;
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(shop);
    await page.getByRole("button", { name: "Chat with us" }).click();
    await page.getByRole("button", { name: "Start chat" }).click();
    const form = page.getByRole("form", { name: /No one is available right now/ });
    await form.waitFor();
    const message = page.getByRole("textbox", { name: "Your message" });
    const address = page.getByRole("textbox", { name: "Your email address" });
    assert.equal(await address.getAttribute("required"), "", "the address is required");
    assert.ok(await page.getByRole("textbox", { name: "Message", exact: true }).isHidden(), "no live chat box");
    const words = `Please call me back about order ${stamp}`;
    await message.fill(words);
    await page.getByRole("button", { name: "Send message" }).click();
    await page.getByRole("alert").filter({ hasText: "enter your email address" }).waitFor();
    assert.equal(await address.getAttribute("aria-invalid"), "true");
    await address.fill("olga@customer");
    await page.getByRole("button", { name: "Send message" }).click();
    await page.getByRole("alert").filter({ hasText: "check your email address" }).waitFor();
    assert.equal(await message.inputValue(), words, "the message is kept");
    await page.screenshot({ path: join(shots, "widget-offline-form.png") });
    const mail = `olga${stamp}@customer.example`;
    await address.fill(mail);
    await page.getByRole("button", { name: "Send message" }).click();
    const confirmation = page.getByRole("status").filter({ hasText: `We’ll reply by email to ${mail}.` });
    await confirmation.waitFor();
    await page.locator(".msg.visitor", { hasText: words }).waitFor();
    assert.ok(await form.isHidden(), "the form goes once the message is taken");
    await page.screenshot({ path: join(shots, "widget-offline.png") });

    const found = await api("GET", `/api/v1/tickets?q=${encodeURIComponent("tag:chat-offline")}`);
    const tickets = found.tickets || [];
    const ticket = tickets.find((t) => (t.subject || "").includes(stamp));
    assert.ok(ticket, `the chat ticket exists: ${JSON.stringify(found).slice(0, 400)}`);
    assert.equal(ticket.channel, "chat");
    assert.ok(ticket.tags.includes("chat-offline"), `tagged: ${ticket.tags}`);
    const contact = await api("GET", `/api/v1/contacts/${ticket.requester_id}`);
    assert.equal(contact.email, mail, "the visitor's address is the requester's");
    assert.deepEqual(errors, []);
    await context.close();
  });
} catch (error) {
  exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(exitCode);
