"""Draws a `spillway load --json` report as an SVG line chart: requests per second
(per timeline bucket, and a 10-bucket moving average) against the number of requests
answered so far, which for a growth run is the size of the table or stream.

Usage: python3 bench/growth_chart.py REPORT.json OUT.svg "title"
Plain SVG written by hand: no plotting library needed.
"""
import json
import sys

report, out, title = sys.argv[1], sys.argv[2], sys.argv[3]
timeline = json.load(open(report))["timeline"]
points, done = [], 0
for bucket in timeline:
    count = sum(bucket["status"].values())
    points.append((done, count))
    done += count
points = points[1:-1] or points  # the first and last buckets are partial seconds
avg = []
for i in range(len(points)):
    window = points[max(0, i - 9):i + 1]
    avg.append((points[i][0], sum(c for _, c in window) / len(window)))

W, H, L, R, T, B = 760, 320, 70, 20, 40, 50
x_max = max(done, 1)
y_max = max(c for _, c in points) * 1.1 or 1


def sx(x):
    return L + (W - L - R) * x / x_max


def sy(y):
    return T + (H - T - B) * (1 - y / y_max)


def polyline(pts, colour, width):
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" points="{path}"/>'


def nice_step(span):
    raw = span / 5
    mag = 10 ** (len(str(int(raw))) - 1)
    return max(mag, round(raw / mag) * mag)


parts = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
    f'<rect width="{W}" height="{H}" fill="white"/>',
    f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
]
step = nice_step(y_max)
y = 0
while y <= y_max:
    parts.append(f'<line x1="{L}" x2="{W - R}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#e5e5e5"/>')
    parts.append(f'<text x="{L - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{int(y):,}</text>')
    y += step
step = nice_step(x_max)
x = 0
while x <= x_max:
    parts.append(f'<text x="{sx(x):.1f}" y="{H - B + 18}" text-anchor="middle">{x / 1e6:g}M</text>')
    x += step
parts += [
    f'<line x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}" stroke="black"/>',
    f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H - B}" stroke="black"/>',
    f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">requests answered so far (items in the table)</text>',
    f'<text x="16" y="{(T + H - B) / 2}" transform="rotate(-90 16 {(T + H - B) / 2})" text-anchor="middle">requests/s</text>',
    polyline(points, "#9ecae1", 1),
    polyline(avg, "#08519c", 2),
    f'<text x="{W - R}" y="{T + 12}" text-anchor="end" fill="#08519c">10 s moving average</text>',
    f'<text x="{W - R}" y="{T + 26}" text-anchor="end" fill="#6baed6">per second</text>',
    "</svg>",
]
open(out, "w").write("\n".join(parts) + "\n")
print(f"chart: {out}")
