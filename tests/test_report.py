"""`condense report` (issue #6): one self-contained HTML page, checked in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from condense_jax import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package chromium) not installed")

SWEEPS = {
    "ode": ["ode", "--widths", "6", "--seeds", "6", "--scale-c", "1", "0.5"],
    "train": ["train", "--widths", "6", "--seeds", "3", "--init-scales", "1e-3", "--steps", "200"],
    "four-phases": ["four-phases", "--widths", "8", "--seeds", "3", "--init-scales", "1e-2", "1e-5", "--n", "30",
                    "--t-max", "300", "--n-records", "30"],
}


@pytest.fixture(scope="module", params=list(SWEEPS))
def report(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "res"
    args = SWEEPS[request.param]
    assert cli.main([args[0], "--out", str(out), *args[1:], "--quiet", "--no-figure"]) == 0
    assert cli.main(["report", str(out)]) == 0
    return out / "report.html"


def test_report_is_self_contained(report):
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    sources = re.findall(r'<img[^>]* src="([^"]*)"', text)
    assert len(sources) >= 1 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(href|src)="(?!data:)', text)  # nothing outside the file
    assert "<h2>Status</h2>" in text and "config hash" in text and "version jax" in text


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--virtual-time-budget=10000", *args], capture_output=True, text=True, timeout=120, check=False)


def rendered(page: Path) -> tuple[int, int, str]:
    res = chromium("--dump-dom", page.as_uri())
    found = re.search(r'data-images="(\d+) (\d+)"', res.stdout)
    assert found, res.stderr[-2000:]
    return int(found.group(1)), int(found.group(2)), res.stderr


@needs_chromium
def test_report_loads_in_chromium_and_every_image_renders(report):
    images, broken, log = rendered(report)
    assert images == report.read_text().count("<img") and images >= 1
    assert broken == 0
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", log)


@needs_chromium
def test_the_browser_check_sees_a_broken_image(tmp_path):
    from condense_jax.engine.report import CHECK

    page = tmp_path / "broken.html"
    page.write_text(f'<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">{CHECK}</body></html>')
    assert rendered(page)[:2] == (1, 1)


def test_report_refuses_what_is_not_a_sweep(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a condense_jax result directory" in err and len(err.strip().splitlines()) == 1


def test_report_captions_say_what_to_look_for_and_show_the_summary(report):
    from condense_jax import kinds

    text = report.read_text()
    kind = re.search(r"<p>([a-z-]+) sweep in", text).group(1).replace("-", "_")
    captions = kinds.resolve(kinds.KINDS[kind].captions)
    shown = re.findall(r"<figcaption>([^<]*)</figcaption>", text)
    assert shown and all(":" in c for c in shown)  # every figure has a caption with its text
    assert any(any(html_unescape(c).endswith(v) for v in captions.values()) for c in shown)
    if kind in ("ode", "four_phases"):  # the fits / phase shares the CLI prints
        assert "<h2>Summary</h2>" in text


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_compact_configuration_values():
    from condense_jax.engine.report import _compact

    assert _compact(list(range(64))) == "0…63 (64)"
    assert _compact([0, 1, 2]) == "[0, 1, 2]"
    assert _compact([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]) == "[1.0, 2.0, 3.0, …, 9.0] (9)"
    assert _compact([3, 1, 2, 7, 5]) == "[3, 1, 2, 7, 5]"  # not a range: as it is


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    for name, scale in (("a", "1"), ("b", "0.4")):
        assert cli.main(["ode", "--out", str(base / name), "--widths", "5", "--seeds", "5", "--scale-c", scale, "--quiet",
                         "--no-figure"]) == 0
    assert cli.main(["report", str(base / "a"), str(base / "b"), "--out", str(base / "cmp.html")]) == 0
    return base / "cmp.html"


def test_report_compares_sweeps_side_by_side(comparison):
    text = comparison.read_text()
    assert "Configuration differences" in text
    start = text.index("Configuration differences")
    diff = text[start:text.index("</table>", start)]  # the differences table alone
    assert "scale_c" in diff and "[1.0]" in diff and "[0.4]" in diff and "widths" not in diff  # only what differs
    rows = re.findall(r'<div class="row">(.*?)</div>', text, re.S)
    assert rows and all(row.count("<img") == 2 for row in rows)  # each figure of both sweeps in one row
    assert not re.search(r'(href|src)="(?!data:)', text)


@needs_chromium
def test_the_comparison_loads_in_chromium(comparison):
    images, broken, _ = rendered(comparison)
    assert images == comparison.read_text().count("<img") >= 2 and broken == 0
