#!/usr/bin/env python3
"""Draws benches/curve.tsv (from benches/curve.sh) as an SVG: heartbeat round trips per
second and bytes per idle connection against the connection count (log scale), sessiond
beside the bare echo server. Plain SVG by hand: no plotting library to install.

    python3 benches/chart.py benches/curve.tsv benches/curve.svg
"""
import csv
import math
import sys

W, H, PAD = 460, 300, 60
COLOURS = {"sessiond": "#1f6feb", "echo": "#8b949e"}


def panel(x0, title, ylabel, rows, keys, fmt):
    xs = [r["conns"] for r in rows]
    ys = [r[k] for r in rows for k in keys.values()]
    lx0, lx1 = math.log10(min(xs)), math.log10(max(xs))
    ymax = max(ys) * 1.15 or 1
    sx = lambda x: x0 + PAD + (math.log10(x) - lx0) / max(lx1 - lx0, 1e-9) * (W - 2 * PAD)
    sy = lambda y: H - PAD + 10 - y / ymax * (H - 2 * PAD)
    out = [f'<text x="{x0 + W / 2}" y="24" text-anchor="middle" font-weight="bold">{title}</text>']
    out.append(f'<line x1="{x0 + PAD}" y1="{H - PAD + 10}" x2="{x0 + W - PAD}" y2="{H - PAD + 10}" stroke="black"/>')
    out.append(f'<line x1="{x0 + PAD}" y1="{PAD - 10}" x2="{x0 + PAD}" y2="{H - PAD + 10}" stroke="black"/>')
    for i in range(5):
        y = ymax * i / 4
        out.append(f'<text x="{x0 + PAD - 6}" y="{sy(y) + 4}" text-anchor="end" font-size="11">{fmt(y)}</text>')
        out.append(f'<line x1="{x0 + PAD}" y1="{sy(y)}" x2="{x0 + W - PAD}" y2="{sy(y)}" stroke="#eee"/>')
    for x in xs:
        out.append(f'<text x="{sx(x)}" y="{H - PAD + 26}" text-anchor="middle" font-size="11">{x:,}</text>')
    out.append(f'<text x="{x0 + W / 2}" y="{H - 12}" text-anchor="middle" font-size="12">connections (log scale)</text>')
    out.append(f'<text x="{x0 + 14}" y="{H / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 {x0 + 14} {H / 2})">{ylabel}</text>')
    for n, (name, k) in enumerate(keys.items()):
        pts = " ".join(f"{sx(r['conns']):.1f},{sy(r[k]):.1f}" for r in rows)
        c = COLOURS[name]
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        for r in rows:
            out.append(f'<circle cx="{sx(r["conns"]):.1f}" cy="{sy(r[k]):.1f}" r="3" fill="{c}"/>')
        out.append(f'<text x="{x0 + W - PAD}" y="{PAD + 4 + 16 * n}" text-anchor="end" font-size="12" fill="{c}">{name}</text>')
    return out


def main(src, dst):
    with open(src) as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f, delimiter="\t")]
    if not rows:
        sys.exit(f"{src}: no rows")
    body = panel(0, "Heartbeat round trips per second", "round trips / s", rows,
                 {"sessiond": "sessiond_rps", "echo": "echo_rps"}, lambda y: f"{y / 1000:.0f}k")
    body += panel(W, "Server memory per idle connection", "bytes of RSS", rows,
                  {"sessiond": "sessiond_bytes", "echo": "echo_bytes"}, lambda y: f"{y:.0f}")
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H}" '
           f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>']
    svg += body + ["</svg>"]
    with open(dst, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: chart.py DATA.tsv OUT.svg")
    main(sys.argv[1], sys.argv[2])
