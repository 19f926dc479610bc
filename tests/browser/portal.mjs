// Drives Debian's chromium through the customer portal. Starts nothing
// itself: web_browser.rs runs `tierdesk demo` and passes
//
//   TIERDESK_URL, TIERDESK_EMAIL, TIERDESK_PASSWORD   an admin agent
//   SCREENSHOT_DIR                                    where the PNGs go
//
// The demo's contacts have no passwords, so the script gives two customers
// portal accounts through the API (invite, accept), as a desk would.
// Exits non-zero on the first failed check.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.TIERDESK_URL;
const email = process.env.TIERDESK_EMAIL;
const password = process.env.TIERDESK_PASSWORD;
const shots = process.env.SCREENSHOT_DIR || "screenshots";
if (!base || !email || !password) {
  console.error("set TIERDESK_URL, TIERDESK_EMAIL and TIERDESK_PASSWORD");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const TIMEOUT = 15000;
const HOSTILE_SUBJECT = "<script>alert(1)</script>";
const HOSTILE_BODY = "<img src=x onerror=alert(1)>";
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

async function call(method, path, body, headers = {}) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return { json, response: r };
}

/** The admin's API session, for the setup a desk's staff would do. */
async function adminApi() {
  const { json, response } = await call("POST", "/api/v1/auth/login", { email, password });
  const cookie = response.headers.get("set-cookie").split(";")[0];
  return (method, path, body) =>
    call(method, path, body, { cookie, "x-csrf-token": json.csrf_token }).then((r) => r.json);
}

/** A contact with portal access and a password. */
async function customer(api, address, name, pass) {
  const contact = await api("POST", "/api/v1/contacts", { email: address, name });
  const invite = await api("POST", `/api/v1/contacts/${contact.id}/invite`, {});
  await call("POST", "/api/v1/portal/accept-invite", { token: invite.invite_token, password: pass });
  return contact;
}

/** A page that records CSP violations, script errors and any dialog. */
async function watchedPage(context, label) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/EventSource|net::ERR_ABORTED|ERR_INCOMPLETE_CHUNKED|404 \(Not Found\)/.test(msg.text())) {
      problems.push(`${label} console: ${msg.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`${label} script error: ${error.message}`));
  page.on("dialog", async (dialog) => {
    problems.push(`${label} dialog: ${dialog.message()}`);
    await dialog.dismiss();
  });
  page.problems = problems;
  return page;
}

async function portalSignIn(page, who, pass) {
  await page.goto(`${base}/portal`);
  assert.match(page.url(), /\/portal\/login$/);
  await page.getByLabel("Email", { exact: true }).fill(who);
  await page.getByLabel("Password", { exact: true }).fill(pass);
  await Promise.all([page.waitForURL(/\/portal$/), page.getByRole("button", { name: "Sign in", exact: true }).click()]);
}

async function noSidewaysScroll(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `${what} scrolls sideways by ${overflow}px`);
}

/** The hostile text is on the page as text, and nothing of it became markup. */
async function renderedAsText(page) {
  await page.getByText(HOSTILE_SUBJECT).first().waitFor();
  await page.getByText(HOSTILE_BODY).first().waitFor();
  assert.equal(await page.locator('img[src="x"]').count(), 0, "no <img> was injected");
  assert.equal(await page.locator("script:not([src])").count(), 0, "no inline <script> was injected");
}

const stamp = Date.now();
const ada = { email: `ada.${stamp}@portal.example`, name: "Ada Portal", pass: "ada portal pass 1" };
const bob = { email: `bob.${stamp}@portal.example`, name: "Bob Other", pass: "bob portal pass 1" };
const SECRET_NOTE = "Internal: check Ada's contract before promising anything";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});

let exitCode = 0;
const pages = [];
try {
  const api = await adminApi();
  await customer(api, ada.email, ada.name, ada.pass);
  await customer(api, bob.email, bob.name, bob.pass);
  const adaTicket = await api("POST", "/api/v1/tickets", {
    subject: "Monitor flickers",
    body: "My second monitor flickers every few seconds.",
    requester_email: ada.email,
  });
  await api("POST", `/api/v1/tickets/${adaTicket.id}/replies`, { body: "Please try another cable." });
  await api("POST", `/api/v1/tickets/${adaTicket.id}/notes`, { body: SECRET_NOTE });
  const bobTicket = await api("POST", "/api/v1/tickets", {
    subject: "Bob's payroll question",
    body: "Why is my payslip late?",
    requester_email: bob.email,
  });

  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await watchedPage(context, "customer");
  pages.push(page);
  let hostileUrl;

  await step("customer A signs in with a password and sees only A's requests", async () => {
    await portalSignIn(page, ada.email, ada.pass);
    const rows = page.locator("#portal-tickets tr");
    await rows.filter({ hasText: "Monitor flickers" }).waitFor();
    assert.equal(await rows.filter({ hasText: "payroll" }).count(), 0, "B's request is not listed");
    assert.equal(await rows.count(), 1);
    await page.screenshot({ path: join(shots, "portal.png"), fullPage: true });
  });

  await step("A reads a request: the conversation, never the internal note", async () => {
    await Promise.all([page.waitForURL(/\/portal\/tickets\/\d+$/), page.getByRole("link", { name: "Monitor flickers" }).click()]);
    await page.locator("#timeline li.entry-reply", { hasText: "Please try another cable." }).waitFor();
    await page.locator("#timeline li.entry-customer", { hasText: "second monitor flickers" }).waitFor();
    assert.ok(!(await page.content()).includes("check Ada's contract"), "the internal note never reaches the portal");
  });

  await step("A replies", async () => {
    await page.getByLabel("Your reply").fill("Another cable did not help.");
    await Promise.all([page.waitForURL(/\/portal\/tickets\/\d+$/), page.getByRole("button", { name: "Send", exact: true }).click()]);
    await page.locator("#timeline li.entry-customer", { hasText: "Another cable did not help." }).waitFor();
    await page.screenshot({ path: join(shots, "portal-ticket.png"), fullPage: true });
  });

  await step("A cannot open B's request", async () => {
    const response = await page.goto(`${base}/portal/tickets/${bobTicket.id}`);
    assert.equal(response.status(), 404);
    assert.ok(!(await page.content()).includes("payslip"));
  });

  await step("A opens a new request with the form", async () => {
    await page.goto(`${base}/portal`);
    await page.getByLabel("Subject").fill("Keyboard misses keys");
    await page.getByLabel("What happened?").fill("The E and R keys do nothing.");
    await Promise.all([page.waitForURL(/\/portal\/tickets\/\d+$/), page.getByRole("button", { name: "Send request" }).click()]);
    await page.getByRole("heading", { level: 1, name: /Keyboard misses keys/ }).waitFor();
  });

  await step("a hostile request shows as text in the portal", async () => {
    await page.goto(`${base}/portal`);
    await page.getByLabel("Subject").fill(HOSTILE_SUBJECT);
    await page.getByLabel("What happened?").fill(HOSTILE_BODY);
    await Promise.all([page.waitForURL(/\/portal\/tickets\/\d+$/), page.getByRole("button", { name: "Send request" }).click()]);
    hostileUrl = page.url();
    await renderedAsText(page);
    assert.match(await page.getByRole("heading", { level: 1 }).innerText(), /<script>alert\(1\)<\/script>/);
    await page.goto(`${base}/portal`);
    await page.locator("#portal-tickets a", { hasText: HOSTILE_SUBJECT }).waitFor();
    assert.equal(await page.locator("script:not([src])").count(), 0);
  });

  const agentContext = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const agent = await watchedPage(agentContext, "agent");
  pages.push(agent);
  await step("the hostile request shows as text in the agent's inbox and ticket page", async () => {
    await agent.goto(`${base}/login`);
    await agent.getByLabel("Email").fill(email);
    await agent.getByLabel("Password").fill(password);
    await Promise.all([agent.waitForURL(/\/inbox$/), agent.getByRole("button", { name: "Sign in" }).click()]);
    await agent.goto(`${base}/inbox?sort=newest`);
    const row = agent.locator("#ticket-rows tr", { hasText: HOSTILE_SUBJECT });
    await row.waitFor();
    assert.equal(await agent.locator('img[src="x"]').count(), 0);
    assert.equal(await agent.locator("script:not([src])").count(), 0);
    const id = hostileUrl.split("/").pop();
    await agent.goto(`${base}/tickets/${id}`);
    await renderedAsText(agent);
    await agent.screenshot({ path: join(shots, "hostile-ticket.png"), fullPage: true });
  });

  const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true });
  const small = await watchedPage(phone, "phone");
  pages.push(small);
  await step("the portal works at 375px wide", async () => {
    await portalSignIn(small, ada.email, ada.pass);
    await noSidewaysScroll(small, "the request list");
    await small.screenshot({ path: join(shots, "portal-375.png"), fullPage: true });
    await small.goto(hostileUrl);
    await renderedAsText(small);
    await noSidewaysScroll(small, "a request");
  });

  await step("A signs out and the portal asks to sign in again", async () => {
    await small.getByRole("button", { name: "Sign out" }).click();
    await small.waitForURL(`${base}/portal/login`);
    await small.goto(`${base}/portal`);
    assert.equal(new URL(small.url()).pathname, "/portal/login");
  });

  await step("no dialogs, CSP violations or script errors", async () => {
    assert.deepEqual(pages.flatMap((p) => p.problems), []);
  });
} catch (error) {
  exitCode = 1;
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(exitCode);
