"""The chart and the study report, opened in real headless Chromium (SPEC 13, 14).

Each test loads the written HTML file from disk with the network unused, waits
until the page says what it drew (``data-ready`` on ``<body>``), checks that the
console stayed clean and that candles and markers are on the canvas (pixels of
their colours), and saves a screenshot under ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest

from indicator_core.cli import main

from .browser import Browser, find_chromium
from .study_vaults import T0, bar, book_minutes, write_output, write_volume
from .vaults import REPO

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (set CHROMIUM=/path, or apt-get install chromium as .ci/run does); on Windows these "
           "tests are skipped: the DevTools pipe they use needs POSIX file descriptors")

PIXELS = """(() => {
  const want = {up: [0x26, 0xa6, 0x9a], down: [0xef, 0x53, 0x50], absorption: [0xfb, 0xbf, 0x24],
                divergence: [0xa7, 0x8b, 0xfa], conf_long: [0x22, 0xd3, 0xee], conf_short: [0xf4, 0x72, 0xb6]};
  const count = Object.fromEntries(Object.keys(want).map(k => [k, 0]));
  for (const c of document.querySelectorAll('#chart canvas')) {
    if (!c.width || !c.height) continue;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4)
      for (const k in want) if (d[i] === want[k][0] && d[i+1] === want[k][1] && d[i+2] === want[k][2]) count[k]++;
  }
  return count;
})()"""


# greenish and reddish pixels of the tallest canvas (the price pane): footprint rows drawn with transparency
TINTS = """(() => {
  let best = null;
  for (const c of document.querySelectorAll('#chart canvas')) if (!best || c.height > best.height) best = c;
  const d = best.getContext('2d').getImageData(0, 0, best.width, best.height).data;
  let green = 0, red = 0;
  for (let i = 0; i < d.length; i += 4) {
    const r = d[i], g = d[i + 1], b = d[i + 2];
    if (g > r + 30 && g > 60 && b > 50) green++;
    else if (r > g + 40 && r > 80 && b < r - 20) red++;
  }
  return {green, red};
})()"""


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium")
    b = Browser(CHROMIUM)
    yield b
    b.close()


@pytest.fixture(scope="module")
def sample_vault(tmp_path_factory) -> Path:
    """The README's sample vault after `indicators run`, with a hand-written book and confluence signals."""
    vault = tmp_path_factory.mktemp("vault")
    shutil.copytree(REPO / "examples" / "vault" / "raw", vault / "raw")
    assert main(["run", "--vault", str(vault), "--quiet"]) == 0
    path = vault / "derived" / "volume" / "okx" / "perps" / "BTC-USDT-SWAP" / "volume_1m.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    last = recs[-400:]
    book_minutes(vault, "BTC-USDT-SWAP", [(r["timestamp_utc"], float(r["close"])) for r in last])
    sig = []
    for k, r in enumerate(last[::37]):
        d = "long" if k % 2 else "short"
        sig.append({"timestamp_utc": r["timestamp_utc"], "inst_id": "BTC-USDT-SWAP", "direction": d,
                    "level": r["low"] if d == "long" else r["high"], "level_side": "lower" if d == "long" else "upper",
                    "score": 3 + k % 3, "of": 5})
    write_output(vault, "confluence", "BTC-USDT-SWAP", "signals", sig)
    return vault


def open_and_check(browser: Browser, html: Path, shot: str, timeout: float = 60, full_page: bool = False):
    text = html.read_text(encoding="utf-8")
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)
    page = browser.open(html)
    ready = json.loads(page.wait_for("document.body && document.body.getAttribute('data-ready')", timeout=timeout))
    browser.pump(0.3)
    assert page.errors() == []
    out = page.screenshot(ARTIFACTS / shot, full_page=full_page)
    print(f"screenshot: {out}")
    return ready, page


@needs_chromium
def test_chart_draws_candles_markers_levels_and_book(browser, sample_vault, tmp_path):
    out = tmp_path / "chart.html"
    assert main(["chart", "--vault", str(sample_vault), "--inst", "BTC-USDT-SWAP", "--out", str(out)]) == 0
    ready, page = open_and_check(browser, out, "chart-btc-1m.png")
    n_bars = len((sample_vault / "derived/volume/okx/perps/BTC-USDT-SWAP/volume_1m.jsonl").read_text().splitlines())
    assert ready["candles"] == n_bars and ready["panes"] == 4 and ready["vwap_lines"] == 3
    assert ready["errors"] == 0
    assert ready["markers"] > 11 and ready["levels"] >= 1 and ready["levels_drawn"] >= 1
    assert ready["heat_cells_drawn"] > 1000
    px = page.eval(PIXELS)
    assert px["up"] > 100 and px["down"] > 100, px  # candles on the canvas
    assert px["absorption"] > 20 and px["divergence"] > 20, px
    assert px["conf_long"] + px["conf_short"] > 20, px


@needs_chromium
def test_chart_of_a_month_of_minutes(browser, tmp_path):
    """43,200 one-minute bars: the page loads at 1m and at 1h."""
    rnd = random.Random(3)
    price, bars = 60000.0, []
    for i in range(43_200):
        o = price
        price = round(price * (1 + rnd.gauss(0, 0.0007)), 1)
        d = rnd.choice(["-", "+"]) + str(rnd.randint(1, 90000))
        bars.append(bar(i, price, open_=o, high=max(o, price) + 5, low=min(o, price) - 5, delta=d,
                        tier=rnd.choice(["T1", "T2", "T2", "T3", "T4"]), absorption=rnd.random() < 0.01,
                        divergence=rnd.random() < 0.02, pcp="+0.01", volume=str(rnd.randint(1000, 900000))))
    vault = tmp_path / "vault"
    write_volume(vault, "BTC-USDT-SWAP", bars)
    hours = len({(T0 + i) // 60 for i in range(43_200)})  # T0 is not on the hour: 721 hourly bars
    for tf, n in (("1m", 43_200), ("1h", hours)):
        out = tmp_path / f"month_{tf}.html"
        assert main(["chart", "--vault", str(vault), "--inst", "BTC-USDT-SWAP", "--tf", tf, "--out", str(out)]) == 0
        ready, page = open_and_check(browser, out, f"chart-month-{tf}.png", timeout=120)
        assert ready["candles"] == n and ready["markers"] > 100 and ready["panes"] == 3  # no CVD written
        px = page.eval(PIXELS)
        assert px["up"] > 50 and px["down"] > 50, px


@needs_chromium
def test_study_report_in_browser(browser, sample_vault, tmp_path, capsys):
    out = tmp_path / "study.html"
    assert main(["study", "--vault", str(sample_vault), "--inst", "BTC-USDT-SWAP", "--signal", "absorption",
                 "--signal", "confluence", "--signal", "whale", "--html", str(out)]) == 0
    ready, page = open_and_check(browser, out, "study-report.png", full_page=True)
    assert ready == {"rows": 12, "paths": 3, "histograms": 12}
    drawn = page.eval("""(() => ({lines: document.querySelectorAll('svg polyline.sig').length,
        bands: document.querySelectorAll('svg polygon').length,
        bars: document.querySelectorAll('svg rect.bar').length,
        rows: document.querySelectorAll('tbody tr').length}))()""")
    assert drawn["lines"] == 3 and drawn["bands"] == 6 and drawn["bars"] > 100 and drawn["rows"] == 12


def test_chart_and_report_cli_boundary(tmp_path, capsys, sample_vault):
    assert main(["chart", "--vault", str(tmp_path), "--inst", "BTC-USDT-SWAP"]) == 2
    assert "indicators run --vault" in capsys.readouterr().err
    for bad, words in [
        (["--inst", "NOPE-USDT-SWAP"], "--inst NOPE-USDT-SWAP"),
        (["--inst", "BTC-USDT-SWAP", "--tf", "7m"], "--tf"),
        (["--inst", "BTC-USDT-SWAP", "--from", "2030-01-01"], "widen --from/--to"),
        (["--inst", "MATIC-USDT-SWAP"], "no committed volume_1m minutes"),
    ]:
        capsys.readouterr()
        assert main(["chart", "--vault", str(sample_vault), *bad, "--out", str(tmp_path / "x.html")]) == 2, bad
        assert words in capsys.readouterr().err, bad
    out = tmp_path / "eth.html"
    assert main(["chart", "--vault", str(sample_vault), "--inst", "ETH-USDT-SWAP", "--tf", "5m", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "Lightweight Charts" in text and '"tf":"5m"' in text


@needs_chromium
def test_chart_of_an_aggregate_draws_each_members_delta(browser, tmp_path):
    from tests.test_aggregates import MEMBERS, eth_vault
    from tests.vaults import write_config

    vault = eth_vault(tmp_path / "v")
    cfg = write_config(tmp_path / "c.toml", MEMBERS)
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--quiet"]) == 0
    out = tmp_path / "aggregate.html"
    assert main(["chart", "--vault", str(vault), "--inst", "aggregate/ETH", "--out", str(out)]) == 0
    ready, _ = open_and_check(browser, out, "chart-aggregate-1m.png")
    assert ready["candles"] == 6 and ready["member_lines"] == 2 and ready["errors"] == 0


@needs_chromium
def test_chart_draws_open_interest_funding_and_liquidation_bubbles(browser, tmp_path):
    from tests.test_derivs import _traded_vault_with_derivs

    vault = _traded_vault_with_derivs(tmp_path)
    derivs = [json.loads(x) for x in (vault / "derived/derivs/okx/perps/BTC-USDT-SWAP/derivs_1m.jsonl").read_text().splitlines()]
    bubbles = sum((r["liq_long_count"] > 0) + (r["liq_short_count"] > 0) for r in derivs)
    out = tmp_path / "derivs.html"
    assert main(["chart", "--vault", str(vault), "--inst", "BTC-USDT-SWAP", "--out", str(out)]) == 0
    ready, page = open_and_check(browser, out, "chart-derivs-1m.png")
    assert ready["errors"] == 0 and ready["panes"] == 5  # price, volume, delta, CVD, open interest
    assert ready["oi_points"] == ready["candles"] and ready["funding_points"] >= ready["candles"] - 1
    assert ready["liq_bubbles"] == bubbles > 10
    px = page.eval(PIXELS)
    assert px["up"] > 50 and px["down"] > 50, px


@needs_chromium
def test_chart_draws_the_footprint_and_session_profiles(browser, tmp_path):
    from tests.test_footprint import _swinging_vault

    vault = _swinging_vault(tmp_path)
    n_fp = len((vault / "derived/footprint/okx/perps/BTC-USDT-SWAP/footprint_1m.jsonl").read_text().splitlines())
    out = tmp_path / "footprint.html"
    # a day of minutes, zoomed out: the page stays readable (cells of a pixel or two)
    assert main(["chart", "--vault", str(vault), "--inst", "BTC-USDT-SWAP", "--from", "2024-11-23",
                 "--to", "2024-11-24", "--out", str(out)]) == 0
    ready, page = open_and_check(browser, out, "chart-footprint-day.png")
    assert ready["errors"] == 0 and ready["footprint_cells_drawn"] > 100 and ready["profiles_drawn"] >= 1
    # a few hours at 1m, close enough to see rows, POCs and imbalances
    out2 = tmp_path / "footprint-zoom.html"
    assert main(["chart", "--vault", str(vault), "--inst", "BTC-USDT-SWAP", "--from", "2024-11-23T23:00",
                 "--to", "2024-11-24T01:00", "--footprint", "--out", str(out2)]) == 0
    ready, page = open_and_check(browser, out2, "chart-footprint-zoom.png")
    assert ready["errors"] == 0 and ready["footprint_cells_drawn"] > 100 and n_fp > 1000
    tint = page.eval(TINTS)
    assert tint["green"] > 2000 and tint["red"] > 2000, tint  # rows coloured by delta, both ways, on the price pane


@needs_chromium
def test_backtest_report_in_browser(browser, tmp_path, capsys):
    from tests.test_backtest import build

    vault = build(tmp_path)
    cfg = tmp_path / "bt.toml"
    cfg.write_text('[backtest.conf]\nsignal = "confluence"\nstop_bp = "5"\ntarget_bp = "30"\nmax_hold_minutes = 5\n')
    out = tmp_path / "backtest.html"
    assert main(["backtest", "--vault", str(vault), "--config", str(cfg), "--html", str(out)]) == 0
    ready, page = open_and_check(browser, out, "backtest-report.png", full_page=True)
    assert ready == {"sections": 1, "trades": 4, "sweep": 5}
    tint = page.eval("""(() => { const c = document.querySelectorAll('svg.scatter circle');
      return {win: [...c].filter(e => e.getAttribute('fill') === '#26a69a').length,
              loss: [...c].filter(e => e.getAttribute('fill') === '#ef5350').length}; })()""")
    assert tint["win"] + tint["loss"] == 4
