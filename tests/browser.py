"""Open a report in headless Chromium and report what a reader's browser would see.

A probe script is put at the top of a copy of the page. It records script errors, failed
loads and ``console.error`` calls, then, after the page has loaded: which images did not
load, the width of the page against the viewport, elements that stick out of it (outside
elements that scroll on purpose), and what the unit picker does when another unit is
chosen. Chromium writes the resulting DOM (``--dump-dom``), from which the probe's JSON is
read back.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")

_PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var target = e.target && e.target !== window ? (e.target.src || e.target.tagName) : "";
    errors.push(String(e.message || ("failed to load " + target)));
  }, true);
  var original = console.error;
  console.error = function () {
    errors.push(Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    setTimeout(function () {
      var r = { viewport: window.innerWidth, page: document.documentElement.scrollWidth };
      var images = Array.prototype.slice.call(document.querySelectorAll("img[src]"));
      r.images = images.length;
      r.broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
        .map(function (i) { return i.alt; });
      r.wide = Array.prototype.slice.call(document.querySelectorAll("body *"))
        .filter(function (el) {
          var scroller = el.parentElement && el.parentElement.closest(".tablewrap, nav, .zoom");
          if (scroller || el.closest(".zoom") || el.tagName === "SCRIPT") { return false; }
          var box = el.getBoundingClientRect();
          return box.width > 0 && box.right > window.innerWidth + 0.5;
        })
        .slice(0, 10)
        .map(function (el) { return el.tagName + "#" + el.id + "." + el.className; });
      var picker = document.getElementById("unit-picker");
      r.options = picker ? picker.options.length : 0;
      if (picker) {
        var name = document.getElementById("unit-name");
        var fan = document.getElementById("fan");
        r.before = name.textContent;
        var fanBefore = fan.innerHTML;
        var housing = document.getElementById("housing-box");
        r.housing_before = housing ? !housing.hidden : null;
        var caption = document.getElementById("fan-caption");
        r.caption_before = caption ? caption.textContent : null;
        picker.value = "__TARGET__";
        picker.dispatchEvent(new Event("change"));
        r.after = name.textContent;
        r.housing_after = housing ? !housing.hidden : null;
        r.caption_after = caption ? caption.textContent : null;
        r.fan_changed = fan.innerHTML !== fanBefore;
        r.svgs = document.querySelectorAll("#explorer svg").length;
        r.keys = document.getElementById("key-numbers").textContent;
        r.table_rows = document.querySelectorAll("#age-table tr").length;
        var dashed = document.querySelector("#fan polyline[stroke-dasharray]");
        r.official_points = dashed ? dashed.getAttribute("points").trim().split(" ").length : 0;
        r.official_right = dashed ? Math.max.apply(null, dashed.getAttribute("points").trim()
          .split(" ").map(function (p) { return parseFloat(p.split(",")[0]); })) : 0;
        r.fan_width = document.querySelector("#fan svg").getAttribute("width");
      }
      r.errors = errors;
      // The page runs in a frame of the probed width; the frame's parent prints the result.
      window.parent.postMessage(JSON.stringify(r), "*");
    }, 200);
  });
}());
</script>"""


_FRAME = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>body {{ margin: 0; }} iframe {{ border: 0; }}</style>
</head><body>
<iframe id="page" src="{src}" style="width: {width}px; height: {height}px"></iframe>
<script>
window.addEventListener("message", function (e) {{
  var pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = e.data;
  document.body.appendChild(pre);
}});
</script>
</body></html>"""

#: Chromium's smallest window is about 500 px wide; narrower viewports are frames.
_MIN_WINDOW = 520


def _frame(page: Path, name: str, width: int, height: int, fragment: str = "") -> Path:
    """A page that shows ``page`` in a frame exactly ``width`` CSS pixels wide."""
    frame = page.with_name(name)
    frame.write_text(
        _FRAME.format(src=page.name + fragment, width=width, height=height), encoding="utf-8"
    )
    return frame


def find_browser() -> str | None:
    """The path of a Chromium-like browser on this machine, or ``None``."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _command(browser: str, width: int, height: int) -> list[str]:
    return [
        browser,
        "--headless",
        "--no-sandbox",  # CI runs as root in a container
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        "--virtual-time-budget=15000",
    ]


def probe(browser: str, page: Path, *, width: int, target: str, height: int = 900) -> dict:
    """Load ``page`` at ``width`` px, choose ``target`` in the picker, return the findings.

    Parameters
    ----------
    browser
        Path of the browser.
    page
        The report's ``index.html``.
    width, height
        Window size in CSS pixels.
    target
        Unit id to choose in the picker (e.g. ``"m4621"``).

    Returns
    -------
    dict
        ``viewport, page, images, broken, wide, options, before, after, fan_changed,
        svgs, keys, table_rows, official_points, official_right, fan_width, errors``,
        ``housing_before``/``housing_after`` (whether the housing plan's box is shown before
        and after choosing ``target``; ``None`` without one), ``caption_before`` /
        ``caption_after`` (the fan chart's caption, with the backtest's coverage sentence)
        and ``stderr_errors`` (uncaught errors that Chromium logged).
    """
    html = page.read_text(encoding="utf-8")
    probed = page.with_name(f"probe_{width}.html")
    probed.write_text(
        html.replace("<head>", "<head>\n" + _PROBE.replace("__TARGET__", target), 1),
        encoding="utf-8",
    )
    frame = _frame(probed, f"frame_{width}.html", width, height)
    window = max(width, _MIN_WINDOW)
    command = [*_command(browser, window, height), "--enable-logging=stderr", "--v=0",
               "--allow-file-access-from-files", "--dump-dom", frame.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.S)
    if match is None:
        raise RuntimeError(
            f"the probe wrote no result (exit {done.returncode}); stderr:\n{done.stderr[-3000:]}"
        )
    text = match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    result = json.loads(text.replace("&quot;", '"'))
    result["stderr_errors"] = [
        line for line in done.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line
    ]
    return result


def screenshot(
    browser: str, page: Path, out: Path, *, width: int, height: int, fragment: str = ""
) -> Path:
    """Save a PNG of the top ``height`` px of ``page`` rendered ``width`` px wide.

    ``fragment`` (e.g. ``"#unit=m3450"``) opens the explorer on one unit.
    """
    from PIL import Image

    frame = _frame(page, f"shot_{width}.html", width, height, fragment)
    window = max(width, _MIN_WINDOW)
    command = [*_command(browser, window, height), f"--screenshot={out}", frame.as_uri()]
    subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    with Image.open(out) as image:
        image.crop((0, 0, width, height)).save(out)
    return out
