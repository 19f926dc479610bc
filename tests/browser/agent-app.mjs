// Drives Debian's chromium through the agent web app. Starts nothing
// itself: the caller (the `it` test binary, web_browser.rs) runs `tierdesk
// demo` and passes the address and two agents' sign-ins:
//
//   TIERDESK_URL, TIERDESK_EMAIL, TIERDESK_PASSWORD   the first agent
//   TIERDESK_EMAIL2                                   a second agent (same password)
//   SCREENSHOT_DIR                                    where the PNGs go
//
// Exits non-zero on the first failed check.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
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

/** Signs in through the API (for the setup calls a person would not make). */
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

/** A page that fails the run on a CSP violation or a script error. */
async function watchedPage(context, label) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/EventSource|net::ERR_ABORTED|ERR_INCOMPLETE_CHUNKED/.test(msg.text())) {
      problems.push(`${label} console: ${msg.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`${label} script error: ${error.message}`));
  page.problems = problems;
  return page;
}

/** Polls `check` from node (waitForFunction would need eval, which the CSP forbids). */
async function until(check, what) {
  const deadline = Date.now() + TIMEOUT;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const live = (page) => page.locator("html[data-live=open]").waitFor({ state: "attached" });

async function signIn(page, who) {
  await page.goto(`${base}/inbox`);
  assert.match(page.url(), /\/login\?next=/);
  await page.getByLabel("Email").fill(who);
  await page.getByLabel("Password").fill(password);
  await Promise.all([page.waitForURL(/\/inbox$/), page.getByRole("button", { name: "Sign in" }).click()]);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});

let exitCode = 0;
try {
  const first = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await watchedPage(first, "agent 1");
  let ticketUrl;

  await step("sign in and see the inbox", async () => {
    await page.goto(`${base}/login`);
    await page.screenshot({ path: join(shots, "login.png") });
    await signIn(page, email);
    const rows = page.locator("#ticket-rows tr[data-id]");
    assert.ok((await rows.count()) > 0, "the inbox lists tickets");
    await page.getByRole("link", { name: /^Tier 1 queue \d+$/ }).waitFor();
    await page.screenshot({ path: join(shots, "inbox.png"), fullPage: false });
  });

  await step("j/k select rows, o opens the ticket", async () => {
    await page.keyboard.press("j");
    await page.keyboard.press("j");
    await page.keyboard.press("k");
    const selected = page.locator("#ticket-rows tr.selected");
    assert.equal(await selected.count(), 1);
    const firstId = await page.locator("#ticket-rows tr[data-id]").first().getAttribute("data-id");
    assert.equal(await selected.getAttribute("data-id"), firstId);
    await Promise.all([page.waitForURL(/\/tickets\/\d+$/), page.keyboard.press("o")]);
    ticketUrl = page.url();
    await page.locator("#timeline li").first().waitFor();
    await page.screenshot({ path: join(shots, "ticket.png"), fullPage: true });
  });

  await step("r replies", async () => {
    await page.keyboard.press("r");
    assert.ok(await page.locator("#kind-reply").isChecked());
    assert.equal(await page.evaluate(() => document.activeElement.id), "body");
    await page.keyboard.type("We are looking into it now.");
    await Promise.all([page.waitForURL(ticketUrl), page.getByRole("button", { name: "Send" }).click()]);
    await page.locator("#timeline li.entry-reply", { hasText: "We are looking into it now." }).waitFor();
  });

  await step("n adds an internal note, marked as one", async () => {
    await page.keyboard.press("n");
    assert.ok(await page.locator("#kind-note").isChecked());
    await page.keyboard.type("Suspect the VPN concentrator again.");
    await Promise.all([page.waitForURL(ticketUrl), page.getByRole("button", { name: "Send" }).click()]);
    const note = page.locator("#timeline li.entry-note", { hasText: "Suspect the VPN concentrator again." });
    await note.waitFor();
    assert.match(await note.locator(".entry-label").innerText(), /internal note/i);
    const background = await note.evaluate((el) => getComputedStyle(el).backgroundColor);
    const replyBackground = await page.locator("#timeline li.entry-reply").last().evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.notEqual(background, replyBackground, "notes look different from replies");
    await note.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots, "ticket-note.png") });
  });

  await step("? shows the shortcuts, Escape closes them", async () => {
    await page.keyboard.press("?");
    await page.locator("#help").waitFor({ state: "visible" });
    await page.screenshot({ path: join(shots, "help.png") });
    await page.keyboard.press("Escape");
    await page.locator("#help").waitFor({ state: "hidden" });
  });

  await step("typing in a field does not trigger shortcuts", async () => {
    await page.locator("#body").focus();
    await page.keyboard.type("jko?e");
    assert.equal(await page.inputValue("#body"), "jko?e");
    assert.equal(page.url(), ticketUrl);
    assert.ok(await page.locator("#help").isHidden());
    await page.keyboard.press("Escape");
    await page.locator("#body").fill("");
  });

  const second = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const other = await watchedPage(second, "agent 2");
  await step("a second agent's inbox shows a new ticket live", async () => {
    await signIn(other, email2);
    await live(other);
    const before = Number(await other.locator("[data-count=all]").innerText());
    const api = await apiSession();
    const subject = `Scanner offline ${Date.now()}`;
    await api("POST", "/api/v1/tickets", {
      subject,
      body: "The scanner on floor 2 stopped answering.",
      requester_email: "live.test@example.org",
    });
    const row = other.locator("#ticket-rows tr", { hasText: subject });
    await row.waitFor();
    assert.equal(await other.locator("#ticket-rows tr").first().locator("td.subject").innerText(), subject);
    await until(async () => Number(await other.locator("[data-count=all]").innerText()) === before + 1, "the count to go up");
    assert.match(await other.locator("[aria-live=polite]").textContent(), new RegExp(subject));
    await other.screenshot({ path: join(shots, "inbox-live.png") });
  });

  await step("the open ticket page appends new timeline entries live", async () => {
    await live(page);
    const id = ticketUrl.split("/").pop();
    const api = await apiSession();
    await api("POST", `/api/v1/tickets/${id}/notes`, { body: "Live note from a colleague" });
    await page.locator("#timeline li.entry-note", { hasText: "Live note from a colleague" }).waitFor();
  });

  await step("tags the ticket from the routing form", async () => {
    // The colleague's live note changed the ticket: the page says so, and
    // the controls are stale until it is reloaded.
    await page.locator("#changed-notice").waitFor();
    await page.reload();
    const tags = page.getByLabel(/^Tags/);
    const before = (await tags.inputValue()).trim();
    await tags.fill(before ? `${before}, browser-checked` : "browser-checked");
    await Promise.all([page.waitForEvent("load"), page.getByRole("button", { name: "Save changes" }).click()]);
    const refused = await page.locator("[role=alert]").allInnerTexts();
    assert.deepEqual(refused, [], "the change is taken");
    await page.locator("#timeline li", { hasText: "browser-checked" }).first().waitFor();
    assert.match(await page.getByLabel(/^Tags/).inputValue(), /\bbrowser-checked\b/);
  });

  await step("e opens the escalation form", async () => {
    await page.locator("body").click({ position: { x: 5, y: 5 } });
    await Promise.all([page.waitForURL(/\/escalate$/), page.keyboard.press("e")]);
    await page.getByRole("heading", { level: 1 }).waitFor();
    await page.screenshot({ path: join(shots, "escalate.png"), fullPage: true });
  });

  await step("submits the escalation form the template built", async () => {
    const heading = await page.getByRole("heading", { level: 1 }).innerText();
    const target = heading.match(/to tier (\d)/);
    assert.ok(target, `the ticket can be escalated: ${heading}`);
    await page.getByLabel(/^Reason/).fill("Needs hands-on help on site");
    for (const field of await page.locator("#escalate-form .template-field").all()) {
      for (const box of await field.locator("textarea").all()) await box.fill("Checked from the browser test.");
      for (const select of await field.locator("select").all()) await select.selectOption({ index: 1 });
      for (const check of await field.locator("input[type=checkbox]").all()) await check.check();
    }
    await Promise.all([
      page.waitForURL(ticketUrl),
      page.getByRole("button", { name: `Escalate to tier ${target[1]}` }).click(),
    ]);
    assert.deepEqual(await page.locator("[role=alert]").allInnerTexts(), [], "the escalation is taken");
    await page.locator(".facts", { hasText: `Tier ${target[1]}` }).waitFor();
    await page.locator("#timeline li", { hasText: "Needs hands-on help on site" }).first().waitFor();
  });

  const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true });
  const small = await watchedPage(phone, "phone");
  await step("works at 375px wide", async () => {
    await signIn(small, email2);
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the inbox scrolls sideways by ${overflow}px`);
    await small.screenshot({ path: join(shots, "inbox-375.png") });
    await small.goto(ticketUrl);
    const ticketOverflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(ticketOverflow <= 1, `the ticket page scrolls sideways by ${ticketOverflow}px`);
    await small.screenshot({ path: join(shots, "ticket-375.png") });
  });

  const plain = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1024, height: 768 } });
  const nojs = await watchedPage(plain, "no script");
  await step("without JavaScript: sign in, open a ticket, add a note", async () => {
    await signIn(nojs, email2);
    await Promise.all([nojs.waitForURL(/\/tickets\/\d+$/), nojs.locator("#ticket-rows a.open").first().click()]);
    await nojs.getByRole("radio", { name: "Internal note" }).check();
    await nojs.getByRole("textbox", { name: "Message" }).fill("Noted without a script");
    await Promise.all([nojs.waitForURL(/\/tickets\/\d+$/), nojs.getByRole("button", { name: "Send" }).click()]);
    await nojs.locator("#timeline li.entry-note", { hasText: "Noted without a script" }).waitFor();
  });

  await step("no CSP violations or script errors", async () => {
    const problems = [...page.problems, ...other.problems, ...small.problems, ...nojs.problems];
    assert.deepEqual(problems, []);
  });
} catch (error) {
  exitCode = 1;
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(exitCode);
