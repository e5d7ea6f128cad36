"""Inline CSS and JavaScript of the HTML report (no external files, CDN or fonts)."""

from __future__ import annotations

CSS = """
:root { --fg: #1d1d1f; --muted: #666; --line: #ddd; --bg: #fafafa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; padding: 1.5rem; }
main { max-width: 1200px; margin: 0 auto; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; word-break: break-all; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); }
.verdict { display: inline-block; padding: .4rem .8rem; border-radius: 6px; color: #fff;
           font-weight: 600; font-size: 1.1rem; }
.label-real { background: #2e7d32; } .label-ai_generated { background: #6a1b9a; }
.label-tampered { background: #c62828; } .decided-none { background: #757575; }
.label-inconclusive { background: #8a6d00; } .conflict { color: #8a6d00; margin: .3em 0; }
.muted { color: var(--muted); }
.grid { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1.5rem; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
.stage { position: relative; width: 100%; background: #ccc; overflow: hidden; }
.stage img { position: absolute; inset: 0; width: 100%; height: 100%; display: block; }
.stage .layer { mix-blend-mode: normal; }
.box { position: absolute; border: 2px solid #00e5ff; box-shadow: 0 0 0 1px #000; }
.box span { position: absolute; left: -2px; top: -1.4rem; background: #00e5ff; color: #000;
            font-weight: 700; font-size: .8rem; padding: 0 .3rem; }
.controls { border: 1px solid var(--line); margin: .6rem 0 0; padding: .5rem .8rem; }
.controls label { margin-right: .9rem; white-space: nowrap; display: inline-block; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem;
         border-bottom: 1px solid var(--line); word-break: break-word; }
th { background: #f0f0f0; white-space: nowrap; }
td ul { margin: 0; padding-left: 1rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
ol li, ul li { margin: .25rem 0; }
.proof { font-weight: 600; }
code { font-size: .85em; word-break: break-all; }
"""

JS = """
(function () {
  var layers = document.querySelectorAll('.stage .layer');
  var outline = document.querySelector('.stage .outline');
  var boxes = document.querySelector('.stage .boxes');
  function byId(id) { return document.getElementById(id); }
  function update() {
    var picked = document.querySelector('input[name="layer"]:checked');
    var chosen = picked ? picked.value : 'none';
    var opacity = byId('opacity') ? byId('opacity').value / 100 : 0.7;
    layers.forEach(function (el) {
      el.style.display = el.getAttribute('data-layer') === chosen ? 'block' : 'none';
      el.style.opacity = opacity;
    });
    if (outline) { outline.style.display = byId('show-outline').checked ? 'block' : 'none'; }
    if (boxes) { boxes.style.display = byId('show-boxes').checked ? 'block' : 'none'; }
  }
  document.querySelectorAll('.controls input').forEach(function (el) {
    el.addEventListener('input', update);
    el.addEventListener('change', update);
  });
  update();
})();
"""
