// The page's only style sheet and script, served by the ingress (no CDN). The script is an enhancement:
// while a send runs it refreshes the parts of the page marked data-live; without it the page reads the same
// and a link reloads it.

export const STYLE = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #4a5360; --line: #c9d1d9; --bg: #ffffff; --accent: #0b57d0;
  --bad: #a4121a; --ok: #176b2c; --warn: #7a4b00; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible {
  outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -9999px; } .skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; }
header { display: flex; justify-content: space-between; align-items: center; padding: .75rem 1.5rem;
  border-bottom: 1px solid var(--line); }
header form { margin: 0; }
main { padding: 1rem 1.5rem 3rem; max-width: 110rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; } h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
progress { width: 6rem; display: block; margin-left: auto; }
time { white-space: nowrap; }
.scroll { overflow-x: auto; }
.status-partial { color: var(--warn); font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .4rem .6rem; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; }
thead th { background: #f3f5f7; }
.status-failed, .bad { color: var(--bad); font-weight: 600; } .status-succeeded { color: var(--ok); font-weight: 600; }
.status-running { color: var(--warn); font-weight: 600; }
.muted { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { font-weight: 600; }
form.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: flex-end; margin: .5rem 0 1rem; }
form.filters label, form.login label { display: block; font-weight: 600; }
input, select, button { font: inherit; padding: .35rem .5rem; border: 1px solid #6b7480; border-radius: 4px; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
button.link { background: none; color: var(--accent); border: none; text-decoration: underline; padding: 0; }
.error { color: var(--bad); font-weight: 600; }
code, .mono { font-family: ui-monospace, monospace; font-size: .9em; word-break: break-all; }
pre { background: #f3f5f7; padding: .75rem; overflow: auto; max-height: 24rem; }
`

export const SCRIPT = `(function () {
  'use strict';
  if (!document.querySelector('[data-running]')) return;
  var status = document.getElementById('live-status');
  function tick() {
    fetch(location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.text() : Promise.reject(new Error('HTTP ' + res.status)); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh) el.replaceWith(document.importNode(fresh, true));
        });
        if (status) status.textContent = 'Updated at ' + new Date().toLocaleTimeString();
        if (doc.querySelector('[data-running]')) setTimeout(tick, 2000);
      })
      .catch(function (err) { if (status) status.textContent = 'Live updates stopped: ' + err.message; });
  }
  setTimeout(tick, 2000);
})();
`
