"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``; ``make test``
installs it when run as root) loads it without a console error, every chart image decodes, and
a screenshot shows a page, not a blank.

Console messages come from Chromium's own log (``--enable-logging=stderr``): the page has no
script, so any ``CONSOLE`` line (a Content-Security-Policy violation, a failed load) is a fault.
Whether the images decoded is asked of the DOM by a small script appended to a *copy* of the
page, without its Content-Security-Policy (which rightly forbids scripts); the report itself
never carries one. A deliberately broken page checks that both probes do catch faults.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report.build import write_report
from harness.report.html import CSP
from tests.report.test_build import XSS, synthetic_rows, write_run

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason=f"headless Chromium not found at {CHROMIUM} (apt-get install chromium; "
           "`make test` installs it when run as root)")

#: Appended to the test's copy only: records, after load, whether each image decoded.
PROBE = """<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "image-probe";
  out.textContent = [...document.images].map(i => i.complete && i.naturalWidth > 0).join(",")
    + "|scripts=" + document.scripts.length;
  document.body.appendChild(out);
});
</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A profile of its own: concurrent runs must not share one; root needs --no-sandbox.
    command = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-dev-shm-usage", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def console_messages(tmp_path: Path, page: Path, shot: Path) -> list[str]:
    result = chromium(tmp_path, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                      "--window-size=1280,2000", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    return [line for line in result.stderr.splitlines()
            if "CONSOLE" in line or "Uncaught" in line]


def image_probe(tmp_path: Path, page: Path) -> tuple[list[bool], int]:
    """Each image's load state and the number of scripts, from a probed copy of ``page``."""
    text = page.read_text(encoding="utf-8")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP)}">'
    copy = tmp_path / "probed.html"
    copy.write_text(text.replace(meta, "").replace("</body>", PROBE + "</body>"), "utf-8")
    result = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", copy.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    found = result.stdout.split('<pre id="image-probe">', 1)[1].split("</pre>", 1)[0]
    images, scripts = found.split("|scripts=")
    return [state == "true" for state in images.split(",") if state], int(scripts)


def screenshot_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and the number of distinct colours (over a grid of pixels) of a PNG."""
    import numpy as np
    from matplotlib.image import imread

    pixels = imread(path)
    height, width = pixels.shape[:2]
    sample = pixels[::8, ::8].reshape(-1, pixels.shape[2])
    return width, height, len(np.unique(sample, axis=0))


def test_the_report_loads_cleanly_in_chromium(tmp_path: Path) -> None:
    run = write_run(tmp_path / "results", synthetic_rows(xss=True), host=XSS)
    page = write_report([run], tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    assert console_messages(tmp_path, page, shot) == []
    width, height, colours = screenshot_colours(shot)
    assert (width, height) == (1280, 2000)
    assert colours > 16, "the screenshot is (nearly) blank"
    images, scripts = image_probe(tmp_path, page)
    assert images and all(images), images
    assert len(images) == page.read_text(encoding="utf-8").count("<img ")
    assert scripts == 1  # only the probe: nothing from the results became a script


def test_the_probes_catch_a_broken_page(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>broken</p>"
                    '<img src="missing.png"><img src="data:image/png;base64,AAAA">'
                    '<script>console.error("boom")</script></body></html>', "utf-8")
    messages = console_messages(tmp_path, page, tmp_path / "shot.png")
    assert any("boom" in line for line in messages)
    images, _ = image_probe(tmp_path, page)
    assert images == [False, False]


def test_the_profile_section_renders_its_stacked_bars(tmp_path: Path) -> None:
    from tests.report.test_profile import profiled_run

    page = write_report([profiled_run(tmp_path / "results")], tmp_path / "report.html")
    assert '<h2 id="profile">' in page.read_text(encoding="utf-8")
    assert console_messages(tmp_path, page, tmp_path / "shot.png") == []
    images, _ = image_probe(tmp_path, page)
    # Every chart decodes: the main charts, the stacked bars and the roofline by category.
    assert len(images) == page.read_text(encoding="utf-8").count("<img ") and all(images)
    section = page.read_text(encoding="utf-8").split('<h2 id="profile">', 1)[1]
    assert section.split("<h2 ", 1)[0].count("<img ") == 2


#: Appended to the test's copy only: the page's width and each scrolling box's overflow at the
#: window's width, first as the page opens, then with every folded section opened.
WIDTH_PROBE = """<script>
window.addEventListener("load", () => {
  const measure = () => [document.documentElement.scrollWidth,
    ...[...document.querySelectorAll(".scroll")].filter(e => e.offsetParent !== null)
      .map(e => e.scrollWidth - e.clientWidth)].join(",");
  const closed = measure();
  document.querySelectorAll("details").forEach(d => d.open = true);
  const out = document.createElement("pre");
  out.id = "width-probe";
  out.textContent = window.innerWidth + "|" + closed + "|" + measure();
  document.body.appendChild(out);
});
</script>"""


def widths(tmp_path: Path, page: Path, width: int) -> tuple[int, list[int], list[int]]:
    """The window's inner width, then (page scroll width, each visible scrolling box's
    overflow) with the page as it opens and with every ``<details>`` opened."""
    text = page.read_text(encoding="utf-8")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP)}">'
    copy = tmp_path / "width.html"
    copy.write_text(text.replace(meta, "").replace("</body>", WIDTH_PROBE + "</body>"), "utf-8")
    result = chromium(tmp_path, "--virtual-time-budget=10000", f"--window-size={width},1000",
                      "--dump-dom", copy.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    found = result.stdout.split('<pre id="width-probe">', 1)[1].split("</pre>", 1)[0]
    inner, closed, opened = found.split("|")
    return (int(inner), [int(v) for v in closed.split(",")],
            [int(v) for v in opened.split(",")])


def test_a_three_backend_report_fits_a_1400_px_page(tmp_path: Path) -> None:
    from tests.report.test_build import three_backend_rows

    page = write_report([write_run(tmp_path / "results", three_backend_rows())],
                        tmp_path / "report.html")
    inner, closed, opened = widths(tmp_path, page, 1400)
    assert inner == 1400  # the window is what the test asked for
    for state, (scroll, *overflows) in (("as opened", closed), ("unfolded", opened)):
        assert scroll <= 1400, f"the page scrolls sideways {state}: {scroll} px"
        assert all(o <= 0 for o in overflows), f"a table scrolls sideways {state}: {overflows}"
    # The probe does catch a page too wide: the same report in a 700-px window.
    _, (scroll, *overflows), _ = widths(tmp_path, page, 700)
    assert scroll > 700 or any(o > 0 for o in overflows)
