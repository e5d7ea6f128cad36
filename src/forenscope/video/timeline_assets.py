"""Inline CSS and JavaScript of the video report: the image report's styles plus the timeline
and the scrubber (the slider, or a click on the timeline, picks the frame shown)."""

from __future__ import annotations

from ..report.html_assets import CSS as IMAGE_CSS

CSS = (
    IMAGE_CSS
    + """
.timeline { width: 100%; height: auto; background: #fff; cursor: pointer; }
.timeline .axis { font-size: 11px; fill: #666; }
.timeline .tick.on { stroke: #000; stroke-width: 2; }
.scrub { position: relative; max-width: 640px; }
.slide { position: relative; margin: 0; display: none; width: 100%; }
.slide.on { display: block; }
.slide img { position: absolute; inset: 0; width: 100%; height: 100%; }
.slide img.map { opacity: .7; }
.cap { display: none; } .cap.on { display: block; }
"""
)

JS = """
(function () {
  var scrub = document.getElementById('scrub');
  var showmap = document.getElementById('showmap');
  var svg = document.querySelector('.timeline');
  function show(i) {
    document.querySelectorAll('.slide, .cap, .tick').forEach(function (el) {
      el.classList.toggle('on', el.getAttribute('data-i') === String(i));
    });
    document.querySelectorAll('.slide img.map').forEach(function (el) {
      el.style.display = showmap && showmap.checked ? 'block' : 'none';
    });
  }
  if (scrub) {
    scrub.addEventListener('input', function () { show(scrub.value); });
    if (showmap) { showmap.addEventListener('change', function () { show(scrub.value); }); }
    if (svg) {
      svg.addEventListener('mousemove', function (ev) {
        var ticks = svg.querySelectorAll('.tick');
        var box = svg.getBoundingClientRect();
        var vx = (ev.clientX - box.left) * svg.viewBox.baseVal.width / box.width;
        var best = 0, dist = Infinity;
        ticks.forEach(function (t) {
          var d = Math.abs(parseFloat(t.getAttribute('x1')) - vx);
          if (d < dist) { dist = d; best = t.getAttribute('data-i'); }
        });
        scrub.value = best; show(best);
      });
    }
    show(0);
  }
})();
"""
