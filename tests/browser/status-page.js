// The status page in a real browser (headless Chromium from Debian, driven
// by playwright-core): log in, open the overview, deploy from the page,
// follow the run's log live until it finishes, check its lines arrived in
// order, and save screenshots in light and dark mode.
//
//   DEPLOYD=target/debug/deployd OUT=target/browser node status-page.js
"use strict";
const { chromium } = require("playwright-core");
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const BIN = path.resolve(process.env.DEPLOYD || "target/debug/deployd");
const OUT = path.resolve(process.env.OUT || "target/browser");
const TOKEN = "browser-test-token-3f9a";
const STEPS = 12;

function fail(msg) {
  console.error("browser test: " + msg);
  process.exitCode = 1;
  throw new Error(msg);
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deployd-browser-"));
  const script = (name, body) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, "#!/bin/sh\n" + body + "\n", { mode: 0o755 });
    return p;
  };
  const site = script("site.sh",
    `echo "deploying $DEPLOY_PROJECT"\n` +
    // Waits (bounded) until the test has the run's page open.
    `i=0; while [ ! -e "${dir}/go" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n` +
    `for i in $(seq 1 ${STEPS}); do printf '\\033[32mstep %s\\033[0m of ${STEPS} <ok>\\n' "$i"; sleep 0.25; done`);
  const api = script("api.sh", `echo "building api"\nprintf '\\033[1;31merror:\\033[0m tests failed\\n'\nexit 1`);
  const config = path.join(dir, "deploy.toml");
  fs.writeFileSync(config, [
    "[server]", 'listen = "127.0.0.1:0"', 'state_dir = "state"', 'log_dir = "logs"',
    'control_socket = "control.sock"', 'shutdown_grace = "2s"',
    "[web]", 'listen = "127.0.0.1:0"', `token = "${TOKEN}"`, 'token_name = "browser"', "actions = true",
    "[projects.site]", 'secret = "browser-secret-value-1234"', 'repository = "acme/site"', `script = "${site}"`,
    "[projects.api]", 'secret = "browser-secret-value-1234"', 'repository = "acme/api"', `script = "${api}"`,
    "",
  ].join("\n"), { mode: 0o600 });

  const daemon = spawn(BIN, ["serve", "-c", config], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, RUST_LOG: "info" } });
  let log = "";
  const web = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no status page address in 20s:\n" + log)), 20000);
    daemon.stderr.on("data", (d) => {
      log += d;
      const m = log.match(/status page on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    daemon.on("exit", (c) => reject(new Error("deployd exited " + c + ":\n" + log)));
  });

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "deployd-chromium-"));
  // A fresh profile directory (--user-data-dir) per run.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1100, height: 760 },
  });
  try {
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); if (process.env.DEBUG) console.log("console:", m.text()); });
    if (process.env.DEBUG) page.on("request", (r) => console.log("request:", r.method(), r.url()));

    // Log in: the overview sends to the login page first.
    await page.goto(web + "/");
    if (!page.url().includes("/login")) fail("expected the login page, got " + page.url());
    await page.getByLabel("Token").fill(TOKEN);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(web + "/");
    if (await page.getByRole("cell", { name: "site" }).count() === 0 &&
        await page.getByRole("rowheader", { name: "site" }).count() === 0) fail("no row for site on the overview");

    // A failing deploy of api, from its page; the overview turns red live.
    await page.goto(web + "/projects/api");
    await page.getByRole("button", { name: "Deploy now" }).click();
    // The page shows the run once it started (live, without a reload).
    await page.locator("a[href='/projects/api/runs/1']").first().waitFor({ timeout: 20000 });
    await page.goto(web + "/");
    await page.locator("tr:has(a[href='/projects/api']) .st.bad").waitFor({ timeout: 20000 });

    // Deploy site and follow its log live.
    await page.goto(web + "/projects/site");
    await page.getByRole("button", { name: "Deploy now" }).click();
    // The project page refreshes itself when the run starts.
    await page.locator("a[href='/projects/site/runs/1']").first().waitFor({ timeout: 20000 });
    await page.goto(web + "/projects/site/runs/1");
    const atLoad = await page.locator("#log .ln").count();
    fs.writeFileSync(path.join(dir, "go"), "");
    if (atLoad >= STEPS) fail("the run was over before the page opened (" + atLoad + " lines)");
    await page.locator("#live").waitFor();
    // The end event: the page refreshes to the final status.
    await page.locator("h1 .st.ok").waitFor({ timeout: 30000 });
    const lines = await page.locator("#log .ln").allInnerTexts();
    const steps = lines.map((l) => (l.match(/step (\d+) of/) || [])[1]).filter(Boolean).map(Number);
    const want = Array.from({ length: STEPS }, (_, i) => i + 1);
    if (JSON.stringify(steps) !== JSON.stringify(want)) fail("lines out of order or missing: " + JSON.stringify(steps));
    if (!lines.some((l) => l.includes("<ok>"))) fail("log text not shown as text");
    // Every line has its anchor, numbered on from the page's own lines.
    const ids = await page.locator("#log .ln").evaluateAll((els) => els.map((e) => e.id));
    ids.forEach((id, i) => { if (id !== "L" + (i + 1)) fail("line " + (i + 1) + " is anchored as " + id); });
    console.log("browser test: " + atLoad + " lines at load, " + lines.length + " at the end, in order");

    // Screenshots, light and dark.
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto(web + "/");
      await page.screenshot({ path: path.join(OUT, `overview-${scheme}.png`) });
      await page.goto(web + "/projects/site/runs/1");
      await page.screenshot({ path: path.join(OUT, `run-${scheme}.png`) });
      await page.goto(web + "/projects/api");
      await page.screenshot({ path: path.join(OUT, `project-${scheme}.png`) });
    }
    if (errors.length) fail("errors in the page:\n" + errors.join("\n"));
    console.log("browser test: passed; screenshots in " + OUT);
  } finally {
    await context.close();
    daemon.kill("SIGTERM");
    fs.rmSync(profile, { recursive: true, force: true });
    if (!process.exitCode) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e && e.stack || e);
  process.exitCode = 1;
});
