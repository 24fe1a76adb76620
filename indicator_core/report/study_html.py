"""The HTML report of ``indicators study --html FILE``: one self-contained page.

Plots are inline SVG written here (no JavaScript library, no network): per
signal, the average direction-adjusted path from 10 minutes before the signal
to the longest horizon after it, with its 95 % band, against the baseline; and
the distribution of the forward returns at each horizon against the baseline's.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from . import write_page
from .study import KEYS, PATH_BEFORE, Study

SIG = "#38bdf8"
BASE = "#9ca3af"
UP = "#26a69a"
DOWN = "#ef5350"


def _fmt(x, spec="+.2f") -> str:
    return "–" if x is None else format(x, spec)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    out = []
    v = start
    while v <= hi + 1e-9 * abs(step):
        out.append(round(v, 10))
        v += step
    return out


def _clean(a) -> list[float | None]:
    return [None if v is None or not np.isfinite(v) else float(v) for v in a]


def path_svg(title: str, sig: tuple, base: tuple, horizons: list[int], w: int = 560, h: int = 280) -> str:
    mean, lo, hi, n = sig
    bmean, blo, bhi, bn = base
    longest = max(horizons)
    xs = list(range(-PATH_BEFORE, longest + 1))
    vals = [v for arr in (mean, lo, hi, bmean, blo, bhi) for v in _clean(arr) if v is not None]
    if not vals:
        vals = [0.0]
    ymin, ymax = min(vals + [0.0]), max(vals + [0.0])
    pad = (ymax - ymin) * 0.08 or 1.0
    ymin, ymax = ymin - pad, ymax + pad
    L, R, T, B = 52, 12, 28, 34
    X = lambda x: L + (x - xs[0]) / (xs[-1] - xs[0]) * (w - L - R)  # noqa: E731
    Y = lambda y: T + (ymax - y) / (ymax - ymin) * (h - T - B)  # noqa: E731
    out = [f'<svg class="plot" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img">',
           f'<text x="{L}" y="16" class="t">{html.escape(title)}</text>']
    for t in _nice_ticks(ymin, ymax):
        out.append(f'<line x1="{L}" x2="{w - R}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" class="g"/>'
                   f'<text x="{L - 6}" y="{Y(t) + 4:.1f}" class="a" text-anchor="end">{t:g}</text>')
    last_label = -1e9
    for t in [-PATH_BEFORE, 0] + horizons:
        out.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{T}" y2="{h - B}" class="{"z" if t == 0 else "g"}"/>')
        if X(t) - last_label >= 22:  # labels that would overlap are left out
            out.append(f'<text x="{X(t):.1f}" y="{h - B + 14}" class="a" text-anchor="middle">{t:+d}</text>')
            last_label = X(t)
    out.append(f'<line x1="{L}" x2="{w - R}" y1="{Y(0):.1f}" y2="{Y(0):.1f}" class="z"/>')
    out.append(f'<text x="{(L + w - R) / 2}" y="{h - 4}" class="a" text-anchor="middle">minutes from the signal '
               f'(entry at the close of minute 0)</text>')
    out.append(f'<text x="12" y="{(T + h - B) / 2}" class="a" text-anchor="middle" '
               f'transform="rotate(-90 12 {(T + h - B) / 2})">bp, direction-adjusted</text>')

    def band(m, a, b, color, dash):
        pts_hi = [(X(x), Y(v)) for x, v in zip(xs, _clean(b)) if v is not None]
        pts_lo = [(X(x), Y(v)) for x, v in zip(xs, _clean(a)) if v is not None]
        if pts_hi and pts_lo:
            poly = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts_hi + pts_lo[::-1])
            out.append(f'<polygon points="{poly}" fill="{color}" fill-opacity="0.16" stroke="none"/>')
        line = " ".join(f"{X(x):.1f},{Y(v):.1f}" for x, v in zip(xs, _clean(m)) if v is not None)
        if line:
            extra = ' stroke-dasharray="5 4" class="base"' if dash else ' class="sig"'
            out.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"{extra}/>')

    band(bmean, blo, bhi, BASE, True)
    band(mean, lo, hi, SIG, False)
    out.append(f'<g class="a"><rect x="{w - R - 190}" y="{T + 4}" width="12" height="3" fill="{SIG}"/>'
               f'<text x="{w - R - 172}" y="{T + 9}">signal (n={n:,})</text>'
               f'<rect x="{w - R - 190}" y="{T + 18}" width="12" height="3" fill="{BASE}"/>'
               f'<text x="{w - R - 172}" y="{T + 23}">baseline (n={bn:,})</text></g>')
    out.append("</svg>")
    return "".join(out)


def hist_svg(title: str, sig: np.ndarray, base: np.ndarray, base_w: np.ndarray | None = None,
             w: int = 270, h: int = 190) -> str:
    L, R, T, B = 10, 10, 24, 30
    out = [f'<svg class="plot hist" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img">',
           f'<text x="{L}" y="15" class="t">{html.escape(title)}</text>']
    if len(sig) == 0:
        out.append(f'<text x="{w / 2}" y="{h / 2}" class="a" text-anchor="middle">no signal with this horizon</text></svg>')
        return "".join(out)
    # the range the signal's returns cover (1st-99th percentile from 50 signals on)
    lo, hi = np.percentile(sig, [1, 99]) if len(sig) >= 50 else (float(sig.min()), float(sig.max()))
    if len(base):
        blo, bhi = np.percentile(base, [5, 95])
        lo, hi = min(lo, blo), max(hi, bhi)
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    edges = np.linspace(lo, hi, 31)
    sh, _ = np.histogram(np.clip(sig, lo, hi), edges, density=True)
    bh, _ = (np.histogram(np.clip(base, lo, hi), edges, weights=base_w, density=True) if len(base)
             else (np.zeros(30), None))
    top = max(sh.max(), bh.max()) or 1.0
    X = lambda x: L + (x - lo) / (hi - lo) * (w - L - R)  # noqa: E731
    Y = lambda y: T + (1 - y / top) * (h - T - B)  # noqa: E731
    for i, v in enumerate(sh):
        x0, x1 = X(edges[i]), X(edges[i + 1])
        color = UP if edges[i + 1] > 0 else DOWN
        out.append(f'<rect x="{x0:.1f}" y="{Y(v):.1f}" width="{max(0.5, x1 - x0 - 1):.1f}" height="{Y(0) - Y(v):.1f}" '
                   f'fill="{color}" fill-opacity="0.75" class="bar"/>')
    step = " ".join(f"{X(edges[i]):.1f},{Y(v):.1f} {X(edges[i + 1]):.1f},{Y(v):.1f}" for i, v in enumerate(bh))
    out.append(f'<polyline points="{step}" fill="none" stroke="{BASE}" stroke-width="1.5"/>')
    if lo < 0 < hi:
        out.append(f'<line x1="{X(0):.1f}" x2="{X(0):.1f}" y1="{T}" y2="{h - B}" class="z"/>')
    m = float(sig.mean())
    if lo <= m <= hi:
        out.append(f'<line x1="{X(m):.1f}" x2="{X(m):.1f}" y1="{T}" y2="{h - B}" stroke="{SIG}" stroke-width="2"/>')
    for t in _nice_ticks(lo, hi, 4):
        out.append(f'<text x="{X(t):.1f}" y="{h - B + 14}" class="a" text-anchor="middle">{t:g}</text>')
    out.append(f'<text x="{w / 2}" y="{h - 3}" class="a" text-anchor="middle">bp</text></svg>')
    return "".join(out)


CSS = """
body { margin: 0; background: #0b0e14; color: #d1d4dc; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 18px 22px 40px; }
h1 { font-size: 22px; color: #f0f3fa; margin: 4px 0 2px; } h2 { font-size: 17px; color: #f0f3fa; margin: 28px 0 8px; }
.sub { color: #8a90a0; } .note { color: #8a90a0; font-size: 12.5px; max-width: 1000px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 12.5px; margin-top: 10px; }
th, td { padding: 3px 8px; text-align: right; border-bottom: 1px solid #1e222d; white-space: nowrap; }
th { color: #8a90a0; font-weight: 500; position: sticky; top: 0; background: #0b0e14; }
td.l, th.l { text-align: left; } tr.first td { border-top: 1px solid #2a2e39; }
.pos { color: #26a69a; } .neg { color: #ef5350; } .sigp { color: #26a69a; font-weight: 600; } .sign { color: #ef5350; font-weight: 600; }
.plots { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: flex-start; }
svg.plot { background: #0f131b; border: 1px solid #1e222d; border-radius: 6px; }
svg .t { fill: #e5e7eb; font-size: 13px; font-weight: 600; } svg .a { fill: #8a90a0; font-size: 11px; }
svg .g { stroke: #1c212c; stroke-width: 1; } svg .z { stroke: #4b5563; stroke-width: 1; }
.hists { display: flex; flex-wrap: wrap; gap: 8px; max-width: 560px; }
section { border-top: 1px solid #1e222d; margin-top: 26px; }
"""


MIN_N_BOLD = 30  # a mean is shown as significant only from this many signals on


def _row_html(r: dict, first: bool) -> str:
    ci_cls = ""
    if r["n"] >= MIN_N_BOLD and r["ci_low_bp"] is not None and r["ci_low_bp"] > 0:
        ci_cls = "sigp"
    elif r["n"] >= MIN_N_BOLD and r["ci_high_bp"] is not None and r["ci_high_bp"] < 0:
        ci_cls = "sign"
    edge = r["edge_bp"]
    hit = "–" if r["hit_rate"] is None else f"{r['hit_rate'] * 100:.1f}%"
    ci = "–" if r["ci_low_bp"] is None else f"[{r['ci_low_bp']:+.2f}, {r['ci_high_bp']:+.2f}]"
    cells = [
        f'<td class="l">{html.escape(r["inst_id"]) if first else ""}</td>',
        f"<td>{r['horizon']}</td><td>{r['n']:,}</td>",
        f'<td class="{ci_cls}">{_fmt(r["mean_bp"])}</td><td>{_fmt(r["median_bp"])}</td>',
        f"<td>{hit}</td><td>{_fmt(r['std_bp'], '.2f')}</td><td>{ci}</td>",
        f"<td>{_fmt(r['mfe_bp'])}</td><td>{_fmt(r['mae_bp'])}</td>",
        f"<td>{r['baseline_n']:,}</td><td>{_fmt(r['baseline_mean_bp'])}</td>",
        f'<td class="{"pos" if (edge or 0) > 0 else "neg" if (edge or 0) < 0 else ""}">{_fmt(edge)}</td>',
        f"<td>{r['overlapping']:,}</td><td>{r['skipped_no_direction']:,}</td>",
    ]
    return f'<tr class="{"first" if first else ""}">{"".join(cells)}</tr>'


def render_report(study: Study, vault: Path | None = None) -> str:
    main = max(study.instruments, key=lambda i: i == "all")  # the pooled rows when several instruments
    head = ("<tr><th class='l'>instrument</th><th>h</th><th>n</th><th>mean</th><th>median</th>"
            "<th>hit</th><th>std</th><th>95% CI of mean</th><th>MFE</th><th>MAE</th><th>baseline n</th>"
            "<th>baseline mean</th><th>edge</th><th>overlapping</th><th>no direction</th></tr>")
    sections = []
    n_paths = n_hists = 0
    for signal in study.signals:
        rows_html = []
        prev = None
        for r in (r for r in study.rows if r["signal"] == signal):
            first = r["inst_id"] != prev
            prev = r["inst_id"]
            rows_html.append(_row_html(r, first))
        parts = []
        p = study.paths.get((main, signal))
        if p is not None:
            parts.append(path_svg(f"{signal} · {main} · average path", p["signal"], p["baseline"], study.horizons))
            n_paths += 1
        hists = []
        for h in study.horizons:
            rr = study.returns.get((main, signal, h))
            if rr is not None:
                hists.append(hist_svg(f"{signal} · +{h} min · returns", rr["signal"], rr["baseline"],
                                      rr.get("baseline_w")))
                n_hists += 1
        sections.append(f'<section><h2>{html.escape(signal)}</h2><div class="plots">{"".join(parts)}'
                        f'<div class="hists">{"".join(hists)}</div></div>'
                        f'<table><thead>{head}</thead><tbody>{"".join(rows_html)}</tbody></table></section>')
    ready = f'{{"rows": {len(study.rows)}, "paths": {n_paths}, "histograms": {n_hists}}}'
    where = f" · vault {html.escape(str(vault))}" if vault else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signal study · {html.escape(", ".join(study.instruments))}</title><style>{CSS}</style></head>
<body data-ready='{ready}'><main>
<h1>Did the signals pay?</h1>
<div class="sub">{html.escape(", ".join(i for i in study.instruments if i != "all"))} · minutes {study.first_utc} → {study.last_utc} UTC{where}</div>
<p class="note">Forward return at horizon h = (close[M+h] / close[M] − 1) × 10,000 bp, times the signal's direction;
entry at the close of the signal minute M. MFE/MAE: best/worst direction-adjusted excursion of the highs and lows of
minutes M+1..M+h. Baseline: every minute with the same direction rule (for whale and confluence, every minute in the
signal's mix of longs and shorts). Edge = mean − baseline mean. 95 % CI: percentile bootstrap of the mean, 10,000
resamples, fixed seed. A bold mean (n ≥ 30) has an interval that excludes zero. Overlapping: signals whose window overlaps the
previous one's (kept). Bands on the paths: mean ± 1.96 standard errors.</p>
{"".join(sections)}
<p class="note">Columns of the JSON output (<code>--json</code>): {", ".join(KEYS)}.</p>
</main></body></html>
"""


def write_report(study: Study, out: Path, vault: Path | None = None) -> None:
    write_page(out, render_report(study, vault), "--html")
