// The reference console in a real browser, as a user would go through it: sign up with
// supabase-js (another origin), create a workspace, start a run and approve its gated
// step as it streams in over an EventSource with a ticket, chat with a streamed reply,
// follow a team discussion to its end, change the password, sign out and in again. Screenshots go to $SCREENSHOTS. Prints a JSON summary.
import puppeteer from "puppeteer-core";

const { CONSOLE_URL, CHROMIUM, SCREENSHOTS } = process.env;
const WAIT = { timeout: 60_000 };
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const summary = { console_errors: [] };
try {
  const page = await browser.newPage();
  page.on("pageerror", (error) => summary.console_errors.push(String(error)));
  await page.setViewport({ width: 1100, height: 1400 });
  const shot = (name) => page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
  const text = (selector) => page.$eval(selector, (el) => el.textContent);
  const fill = async (selector, value) => {
    await page.$eval(selector, (el) => { el.value = ""; });
    await page.type(selector, value);
  };

  await page.goto(CONSOLE_URL, { waitUntil: "load" });
  const email = `browser-${Date.now()}@example.com`;
  await fill("#email", email);
  await fill("#password", "a browser's password");
  await page.click("#signup");
  await page.waitForSelector("#workspace-panel:not([hidden])", WAIT);
  summary.signed_in_as = await text("#who");

  await fill("#workspace-name", "Browser workspace");
  await page.click("#create-workspace");
  await page.waitForSelector("#agents li", WAIT);
  summary.agents = (await page.$$("#agents li")).length;
  await shot("1-workspace");

  await page.select("#template", "Release notes, approved before publishing");
  await fill("#run-input", "Version 2.0 adds offline mode.");
  await page.click("#start-run");
  await page.waitForSelector("#approvals button.approve", WAIT);
  await shot("2-run-waiting-for-approval");
  await page.click("#approvals button.approve");
  await page.waitForFunction(
    () => document.querySelector("#run-status").textContent === "succeeded", WAIT);
  summary.run_events = await page.$$eval("#events li", (items) => items.map((i) => i.textContent));
  await shot("3-run-succeeded");

  await fill("#chat-input", "Write a tagline for my bakery's SEO page");
  await page.click("#chat-send");
  await page.waitForSelector("#chat-reply[data-done='true']", WAIT);
  summary.chat_reply = await text("#chat-reply");
  summary.chat_meta = await text("#chat-meta");
  summary.usage = await text("#usage");
  await shot("4-chat");

  await fill("#discussion-topic", "Which city should we launch in first?");
  await page.click("#discussion-start");
  await page.waitForFunction(
    () => document.querySelector("#discussion-status").textContent === "completed", WAIT);
  summary.discussion_messages = (await page.$$("#discussion-log li")).length;
  await shot("5-discussion");

  await fill("#new-password", "a newer browser password");
  await page.click("#update-password");
  await page.waitForFunction(
    () => document.querySelector("#status").textContent === "Password changed.", WAIT);
  await page.click("#signout");
  await page.waitForSelector("#signed-out:not([hidden])", WAIT);
  summary.after_sign_out = await text("#status");

  await fill("#email", email);
  await fill("#password", "a newer browser password");
  await page.click("#signin");
  await page.waitForSelector("#signed-in:not([hidden])", WAIT);
  summary.signed_in_again = true;
  await shot("6-signed-in-again");
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
