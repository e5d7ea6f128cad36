"""Inline CSS and JavaScript of the HTML report (no external files, CDN or fonts), and the one
set of verdict badge colours (light and dark) that the report and the web UI share.

`BADGE_COLOURS[scheme][label]` is a `BadgeColour(background, text)`; every pair meets WCAG AA
(contrast >= 4.5:1, `contrast_ratio`). `badge_css(selector)` writes the rules for any selector
pattern, the dark ones under `prefers-color-scheme: dark`.
"""

from __future__ import annotations

from typing import NamedTuple


class BadgeColour(NamedTuple):
    background: str
    text: str


BADGE_LABELS = ("real", "ai_generated", "tampered", "inconclusive", "none")
BADGE_COLOURS: dict[str, dict[str, BadgeColour]] = {
    "light": {
        "real": BadgeColour("#1b6e32", "#ffffff"),
        "ai_generated": BadgeColour("#6a1b9a", "#ffffff"),
        "tampered": BadgeColour("#b3261e", "#ffffff"),
        "inconclusive": BadgeColour("#7a5900", "#ffffff"),
        "none": BadgeColour("#5f6368", "#ffffff"),
    },
    "dark": {
        "real": BadgeColour("#81c995", "#0b2813"),
        "ai_generated": BadgeColour("#d7aefb", "#250a3b"),
        "tampered": BadgeColour("#f2b8b5", "#3b0907"),
        "inconclusive": BadgeColour("#fdd663", "#2e2200"),
        "none": BadgeColour("#bdc1c6", "#1f1f1f"),
    },
}
# Page colours per scheme: (background, text, muted text, lines, table header, panel).
PAGE_COLOURS = {
    "light": ("#fafafa", "#1d1d1f", "#595959", "#d0d0d0", "#ececec", "#ffffff"),
    "dark": ("#121416", "#e8eaed", "#b0b5ba", "#3c4043", "#1e2124", "#1a1c1e"),
}


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def badge_css(selector: str = ".label-{label}") -> str:
    """CSS rules giving each verdict label its badge colours, light then dark."""

    def rules(scheme: str) -> str:
        return "\n".join(
            f"{selector.format(label=label)} {{ background: {c.background}; color: {c.text}; }}"
            for label, c in BADGE_COLOURS[scheme].items()
        )

    return f"{rules('light')}\n@media (prefers-color-scheme: dark) {{\n{rules('dark')}\n}}\n"


def _page_vars(scheme: str) -> str:
    bg, fg, muted, line, head, panel = PAGE_COLOURS[scheme]
    return (
        f"--bg: {bg}; --fg: {fg}; --muted: {muted}; --line: {line}; --head: {head}; "
        f"--panel: {panel};"
    )


CSS = (
    f":root {{ color-scheme: light dark; {_page_vars('light')} }}\n"
    f"@media (prefers-color-scheme: dark) {{ :root {{ {_page_vars('dark')} }} }}\n"
    + badge_css(".label-{label}").replace(".label-none", ".decided-none")
    + """
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; padding: 1.5rem; }
@media (max-width: 600px) { body { padding: .75rem; } }
main { max-width: 1200px; margin: 0 auto; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
.verdict { display: inline-block; padding: .4rem .8rem; border-radius: 6px;
           font-weight: 600; font-size: 1.1rem; }
.conflict { margin: .3em 0; font-weight: 600; }
.muted { color: var(--muted); }
.grid { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1.5rem; }
@media (max-width: 900px) { .grid { grid-template-columns: minmax(0, 1fr); } }
.mode { margin: .7rem 0 0; }
button { font: inherit; color: inherit; background: var(--panel); border: 1px solid var(--muted);
         border-radius: 5px; padding: .2rem .6rem; cursor: pointer; min-height: 2rem; }
button[aria-pressed="true"] { background: var(--fg); color: var(--bg); }
button:focus-visible, input:focus-visible, summary:focus-visible, .viewport:focus-visible {
  outline: 3px solid #1a73e8; outline-offset: 2px; }
.plain { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
         padding: .3rem 1rem .8rem; align-self: start; }
.plain .plain-verdict { font-size: 1.15rem; font-weight: 600; }
.plain li { margin: .35rem 0; }
details.tech > summary, details.more > summary { cursor: pointer; }
details.tech > summary h2 { display: inline; border: 0; }
details.tech { margin-top: 1.2rem; border-bottom: 1px solid var(--line); }
.viewport { position: relative; width: 100%; overflow: auto; background: #808080;
            touch-action: pan-x pan-y; }
.viewport.zoomed { cursor: grab; }
.viewport.dragging { cursor: grabbing; }
.stage { position: relative; width: 100%; margin: 0 auto; }
.stage > img { position: absolute; inset: 0; width: 100%; height: 100%; display: block;
               user-select: none; -webkit-user-drag: none; }
.stage.pixels > img.base { image-rendering: pixelated; }
.stage svg { position: absolute; inset: 0; width: 100%; height: 100%; overflow: visible;
             pointer-events: none; }
.stage svg .outline { fill: none; stroke: #00e5ff; stroke-width: 2;
                      vector-effect: non-scaling-stroke; }
.stage svg .pair-line { stroke: #ff4fd8; stroke-width: 2; stroke-dasharray: 6 4;
                        vector-effect: non-scaling-stroke; }
.box, .pair { position: absolute; border: 2px solid #00e5ff; box-shadow: 0 0 0 1px #000; }
.pair { border: 2px dashed #ff4fd8; }
.box span, .pair span { position: absolute; left: -2px; top: -1.35rem; background: #00e5ff;
  color: #000; font-weight: 700; font-size: .8rem; padding: 0 .3rem; white-space: nowrap; }
.pair span { background: #ff4fd8; top: auto; bottom: -1.35rem; }
.box.flip span { top: auto; bottom: -1.35rem; }
.pair.flip span { bottom: auto; top: -1.35rem; }
.layer-note { position: absolute; left: .5rem; bottom: .5rem; margin: 0; padding: .2rem .5rem;
              background: rgba(0, 0, 0, .75); color: #fff; border-radius: 4px; }
.zoom { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; margin: .5rem 0 0; }
.controls { border: 1px solid var(--line); margin: .6rem 0 0; padding: .5rem .8rem; }
.controls label { margin-right: .9rem; display: inline-block; }
.controls .nothing { color: var(--muted); font-size: .85em; }
.legend { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; align-items: center;
          margin: .6rem 0 0; font-size: .9rem; }
.legend .ramp { display: inline-block; width: 10rem; height: .9rem; vertical-align: middle;
                border: 1px solid var(--line); }
.legend .swatch { display: inline-block; width: 1.1rem; height: .8rem; vertical-align: middle;
                  margin-right: .3rem; }
.table-wrap { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem;
         border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
th { background: var(--head); }
td ul { margin: 0; padding-left: 1rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
@media (max-width: 600px) {
  table.stack thead { display: none; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack tr { border-bottom: 2px solid var(--line); padding: .3rem 0; }
  table.stack td { border: 0; padding: .15rem .3rem; text-align: left; white-space: normal; }
  table.stack td::before { content: attr(data-label) ": "; font-weight: 600; }
}
ol li, ul li { margin: .25rem 0; }
.proof { font-weight: 600; }
code { font-size: .85em; overflow-wrap: anywhere; }
abbr[title] { text-decoration: underline dotted; cursor: help; }
dl.glossary dt { font-weight: 600; margin-top: .4rem; }
dl.glossary dd { margin: 0 0 0 1rem; }
.daam-strip { display: flex; flex-wrap: wrap; gap: 6px; }
.daam-strip figure { margin: 0; text-align: center; font-size: .8rem; }
.daam-strip figure.decision img { outline: 3px solid #ff4fd8; }
"""
)

JS = """
(function () {
  function byId(id) { return document.getElementById(id); }
  function all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }

  // --- reading mode: "for non-specialists" folds every technical section -------------------
  var plainButton = byId('mode-plain');
  function setPlain(on) {
    document.body.classList.toggle('plain-mode', on);
    if (plainButton) { plainButton.setAttribute('aria-pressed', on ? 'true' : 'false'); }
    all('details.tech').forEach(function (d) { d.open = !on; });
  }
  if (plainButton) {
    plainButton.addEventListener('click', function () {
      var on = plainButton.getAttribute('aria-pressed') !== 'true';
      setPlain(on);
      try { history.replaceState(null, '', on ? '#plain' : '#'); } catch (e) { /* file: URL */ }
    });
    if (location.hash === '#plain') { setPlain(true); }
  }

  // --- layers, outline, boxes, opacity ------------------------------------------------------
  var layers = all('.stage .layer');
  var note = document.querySelector('.stage .layer-note');
  function update() {
    var picked = document.querySelector('input[name="layer"]:checked');
    var chosen = picked ? picked.value : 'none';
    var opacity = byId('opacity') ? byId('opacity').value / 100 : 0.7;
    layers.forEach(function (el) {
      el.style.display = el.getAttribute('data-layer') === chosen ? 'block' : 'none';
      el.style.opacity = opacity;
    });
    if (note) {
      var text = picked ? picked.getAttribute('data-nothing') : null;
      note.hidden = !text;
      note.textContent = text || '';
    }
    [['show-outline', '.stage svg .outline'], ['show-boxes', '.stage .box'],
     ['show-pairs', '.stage .pair, .stage svg .pair-line']].forEach(function (pair) {
      var box = byId(pair[0]);
      all(pair[1]).forEach(function (el) {
        el.style.display = box && !box.checked ? 'none' : '';
      });
    });
  }
  all('.controls input').forEach(function (el) {
    el.addEventListener('input', update);
    el.addEventListener('change', update);
  });
  update();

  // --- zoom and pan on the full-resolution picture ------------------------------------------
  var viewport = document.querySelector('.viewport');
  var stage = document.querySelector('.stage');
  if (!viewport || !stage) { return; }
  var natural = Number(stage.getAttribute('data-width')) || 1;
  var ratio = (Number(stage.getAttribute('data-height')) || 1) / natural;
  var level = byId('zoom-level');
  var zoom = 1;  // 1 = the whole picture fits
  function fitWidth() {
    var maxHeight = Math.max(200, window.innerHeight * 0.8);
    return Math.min(viewport.clientWidth, maxHeight / ratio);
  }
  function maxZoom() { return Math.max(1, 16 * natural / fitWidth()); }
  function apply(newZoom, cx, cy) {
    var fit = fitWidth();
    var old = stage.getBoundingClientRect();
    var vp = viewport.getBoundingClientRect();
    cx = cx === undefined ? vp.width / 2 : cx;
    cy = cy === undefined ? vp.height / 2 : cy;
    var fx = (viewport.scrollLeft + cx - (old.left - vp.left + viewport.scrollLeft)) / old.width;
    var fy = (viewport.scrollTop + cy - (old.top - vp.top + viewport.scrollTop)) / old.height;
    zoom = Math.min(maxZoom(), Math.max(1, newZoom));
    var width = fit * zoom;
    stage.style.width = width + 'px';
    stage.style.height = width * ratio + 'px';
    viewport.style.height = fit * ratio + 'px';
    viewport.classList.toggle('zoomed', zoom > 1);
    stage.classList.toggle('pixels', width / natural >= 2);
    viewport.scrollLeft = fx * width - cx;
    viewport.scrollTop = fy * width * ratio - cy;
    if (level) {
      level.textContent = zoom === 1 ? 'fit (' + Math.round(100 * width / natural) + '%)'
        : Math.round(100 * width / natural) + '%';
    }
  }
  function step(factor) { apply(zoom * factor); }
  all('[data-zoom]').forEach(function (el) {
    el.addEventListener('click', function () {
      var how = el.getAttribute('data-zoom');
      if (how === 'in') { step(1.5); }
      else if (how === 'out') { step(1 / 1.5); }
      else if (how === 'fit') { apply(1); }
      else { apply(Number(how) * natural / fitWidth()); }
    });
  });
  viewport.addEventListener('wheel', function (ev) {
    if (!ev.ctrlKey && !ev.metaKey) { return; }  // a plain wheel scrolls the page
    ev.preventDefault();
    var vp = viewport.getBoundingClientRect();
    apply(zoom * (ev.deltaY < 0 ? 1.25 : 0.8), ev.clientX - vp.left, ev.clientY - vp.top);
  }, { passive: false });
  viewport.addEventListener('keydown', function (ev) {
    if (ev.key === '+' || ev.key === '=') { step(1.5); ev.preventDefault(); }
    else if (ev.key === '-') { step(1 / 1.5); ev.preventDefault(); }
    else if (ev.key === '0') { apply(1); ev.preventDefault(); }
    else if (ev.key === '1') { apply(natural / fitWidth()); ev.preventDefault(); }
  });
  var drag = null;
  viewport.addEventListener('pointerdown', function (ev) {
    if (zoom <= 1 || ev.button !== 0) { return; }
    drag = { x: ev.clientX, y: ev.clientY, left: viewport.scrollLeft, top: viewport.scrollTop };
    viewport.classList.add('dragging');
    viewport.setPointerCapture(ev.pointerId);
  });
  viewport.addEventListener('pointermove', function (ev) {
    if (!drag) { return; }
    viewport.scrollLeft = drag.left - (ev.clientX - drag.x);
    viewport.scrollTop = drag.top - (ev.clientY - drag.y);
  });
  function endDrag() { drag = null; viewport.classList.remove('dragging'); }
  viewport.addEventListener('pointerup', endDrag);
  viewport.addEventListener('pointercancel', endDrag);
  window.addEventListener('resize', function () { apply(zoom); });
  apply(1);
})();
"""
