// Drives bookbridge's GraphiQL in a headless Chromium: open the page, type a query into the
// editor, run it, read the result from the page, save a screenshot. Every request the page makes
// is recorded, and any not on 127.0.0.1 (or a data: URL) is blocked and reported.
//   node drive_graphiql.mjs <graphql page URL> <query> <screenshot.png> [headers JSON]
// prints one JSON object: {result, editor, requests, offsite, explorer, headersTab, errors}
import { chromium } from "playwright-core";

const [url, query, screenshot, headers] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const local = (u) => u.startsWith("data:") || new URL(u).hostname === "127.0.0.1";

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
const out = { requests: [], offsite: [], errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  page.setDefaultTimeout(20000);
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && out.errors.push(m.text()));
  await page.context().route("**/*", (route) => {
    const u = route.request().url();
    out.requests.push(u);
    if (local(u)) return route.continue();
    out.offsite.push(u);
    return route.abort("blockedbyclient");
  });
  await page.goto(url, { waitUntil: "load" });
  const editor = ".graphiql-query-editor .CodeMirror";
  await page.waitForSelector(editor);
  await page.click(`${editor} .CodeMirror-lines`);
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.type(query, { delay: 5 });
  await page.keyboard.press("Escape"); // close an autocomplete hint, if one is open
  out.editor = await page.$eval(editor, (el) => el.CodeMirror.getValue());
  const headersTab = page.locator(".graphiql-editor-tools button", { hasText: "Headers" });
  out.headersTab = (await headersTab.count()) > 0;
  if (headers) {
    await headersTab.click();
    const headersEditor = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror";
    await page.click(`${headersEditor} .CodeMirror-lines`);
    await page.keyboard.type(headers, { delay: 5 });
    out.headers = await page.$eval(headersEditor, (el) => el.CodeMirror.getValue());
  }
  await page.click(".graphiql-execute-button");
  const result = ".graphiql-response .CodeMirror";
  await page.waitForFunction(
    (sel) => {
      const el = document.querySelector(sel);
      return el && el.CodeMirror && el.CodeMirror.getValue().trim().startsWith("{");
    },
    result,
  );
  out.result = await page.$eval(result, (el) => el.CodeMirror.getValue());
  const prettify = page.locator('button[aria-label^="Prettify"]');
  if ((await prettify.count()) > 0) await prettify.first().click(); // a readable screenshot
  const explorer = page.locator('button[aria-label="Show GraphiQL Explorer"]');
  await explorer.click();
  await page.waitForSelector(".graphiql-explorer-root");
  out.explorer = await page.$eval(".graphiql-explorer-root", (el) => el.innerText);
  await page.screenshot({ path: screenshot });
} catch (e) {
  out.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
