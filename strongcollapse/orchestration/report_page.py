"""The report page of ``strongcollapse reproduce``: ``index.html`` and ``REPORT.md``.

Built from the runs' ``meta.json`` files alone (no recomputation): for every experiment its paper,
claim, figure, command, runtime and the theory-vs-simulation agreement (cells within tolerance,
worst relative error, worst |z|, the tolerance used), then the environment. ``index.html`` embeds
the figures (base64 PNG), so the one file is readable offline and can be mailed or archived;
``REPORT.md`` links them by relative path.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import pathlib
from typing import Any

from strongcollapse.orchestration.registry import experiment
from strongcollapse.orchestration.results import atomic_write_text

__all__ = ["write_report", "collect"]

_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #0a7a28; font-weight: 600; } .bad { color: #b00020; font-weight: 600; }
code { background: #f5f5f5; padding: 0.1em 0.3em; border-radius: 3px; }
img { max-width: 100%; border: 1px solid #eee; }
.claim { font-style: italic; } .paper { color: #555; font-size: 0.9em; }
pre { background: #f8f8f8; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
"""


def collect(folder: pathlib.Path, selected: list[str], *, quick: bool) -> list[dict[str, Any]]:
    """One entry per experiment: its registry facts and its run's meta (None if it never ran)."""
    entries = []
    for name in selected:
        exp = experiment(name)
        meta_path = folder / name / "meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else None
        entries.append(
            {
                "name": name,
                "paper": exp.paper,
                "claim": exp.claim or exp.summary,
                "command": f"strongcollapse run {name}{' --quick' if quick else ''}",
                "figure": f"{name}/{name}.png",
                "meta": meta,
            }
        )
    return entries


def _agreement(meta: dict[str, Any] | None) -> tuple[str, str, str, str, bool]:
    """(cells within, worst relative error, worst |z|, tolerance) as text, and whether all agree."""
    if not meta or meta.get("status") != "finished":
        return ("not run", "", "", "", False)
    a = meta["agreement"]
    return (
        f"{a['passed']}/{a['cells']}",
        f"{a['worst_rel']:.2%}",
        f"{a['worst_z']:.2f}",
        f"|mean − theory| ≤ {a['z_tol']:g} s.e. + r·|theory|, r = {a['r']}",
        bool(a["ok"]),
    )


def _environment(entries: list[dict[str, Any]]) -> dict[str, Any]:
    for entry in entries:
        if entry["meta"]:
            return entry["meta"].get("environment", {})
    return {}


def _html(entries: list[dict[str, Any]], folder: pathlib.Path, *, quick: bool) -> str:
    esc = html.escape
    total = sum(float(e["meta"].get("seconds", 0)) for e in entries if e["meta"])
    rows = []
    for e in entries:
        within, rel, z, _, ok = _agreement(e["meta"])
        verdict = '<span class="ok">agrees</span>' if ok else '<span class="bad">CHECK</span>'
        seconds = f"{e['meta'].get('seconds', 0):.1f} s" if e["meta"] else ""
        rows.append(
            f'<tr><td><a href="#{esc(e["name"])}">{esc(e["name"])}</a></td><td class="num">{within}</td>'
            f'<td class="num">{rel}</td><td class="num">{z}</td><td class="num">{seconds}</td><td>{verdict}</td></tr>'
        )
    sections = []
    for e in entries:
        within, rel, z, rule, ok = _agreement(e["meta"])
        png = folder / e["figure"]
        if png.is_file():
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            image = f'<img alt="{esc(e["name"])} figure" src="data:image/png;base64,{data}">'
        else:
            image = "<p class='bad'>no figure (the run did not finish)</p>"
        meta = e["meta"] or {}
        notes = "\n".join(meta.get("notes", []))
        convergence = meta.get("convergence", {})
        sections.append(
            f'<h2 id="{esc(e["name"])}">{esc(e["name"])}</h2>\n'
            f'<p class="paper">{esc(e["paper"])}</p>\n<p class="claim">{esc(e["claim"])}</p>\n{image}\n'
            f"<table><tr><th>command</th><td><code>{esc(e['command'])}</code></td></tr>"
            f"<tr><th>runtime</th><td>{meta.get('seconds', 0):.1f} s "
            f"({meta.get('chunks', {}).get('reused', 0)} chunks reused)</td></tr>"
            f"<tr><th>cells within tolerance</th><td>{within} "
            f"{'<span class=ok>(all)</span>' if ok else '<span class=bad>(not all)</span>'}</td></tr>"
            f"<tr><th>worst relative error</th><td>{rel}</td></tr><tr><th>worst |z|</th><td>{z}</td></tr>"
            f"<tr><th>tolerance</th><td>{esc(rule)}</td></tr>"
            f"<tr><th>fixed points</th><td>{'all converged' if convergence.get('all_converged') else 'NOT all converged'}"
            f" (max {convergence.get('max_iterations', 0)} iterations)</td></tr>"
            f"<tr><th>outputs</th><td><a href=\"{esc(e['name'])}/results.csv\">results.csv</a>, "
            f"<a href=\"{esc(e['name'])}/meta.json\">meta.json</a>, "
            f"<a href=\"{esc(e['name'])}/{esc(e['name'])}.pdf\">PDF</a></td></tr></table>\n"
            + (f"<pre>{esc(notes)}</pre>\n" if notes else "")
        )
    env = _environment(entries)
    env_rows = "".join(
        f"<tr><th>{esc(str(k))}</th><td>{esc(', '.join(v) if isinstance(v, list) else str(v))}</td></tr>"
        for k, v in env.items()
    )
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>strongcollapse reproduction report</title><style>{_STYLE}</style></head><body>\n"
        "<h1>strongcollapse: reproduction report</h1>\n"
        f"<p>{len(entries)} experiment(s){' in their <code>--quick</code> form' if quick else ''}, "
        f"{total:.0f} s of computing in all; written {stamp}. Lines in the figures are theory, "
        "markers simulation (mean ± 2 s.e.).</p>\n"
        "<table><tr><th>experiment</th><th>cells within</th><th>worst rel. error</th><th>worst |z|</th>"
        f"<th>runtime</th><th></th></tr>{''.join(rows)}</table>\n"
        + "".join(sections)
        + f"<h2 id='environment'>Environment</h2><table>{env_rows}</table>\n</body></html>\n"
    )


def _markdown(entries: list[dict[str, Any]], *, quick: bool) -> str:
    lines = [
        "# strongcollapse: reproduction report",
        "",
        f"{len(entries)} experiment(s){' (`--quick`)' if quick else ''}. Lines are theory, markers simulation (mean ± 2 s.e.).",
        "",
        "| experiment | cells within tolerance | worst relative error | worst \\|z\\| | runtime |",
        "|---|---|---|---|---|",
    ]
    for e in entries:
        within, rel, z, _, _ = _agreement(e["meta"])
        seconds = f"{e['meta'].get('seconds', 0):.1f} s" if e["meta"] else ""
        lines.append(f"| [{e['name']}](#{e['name']}) | {within} | {rel} | {z} | {seconds} |")
    for e in entries:
        within, rel, z, rule, _ = _agreement(e["meta"])
        lines += [
            "",
            f"## {e['name']}",
            "",
            f"*{e['paper']}*" if e["paper"] else "",
            "",
            e["claim"],
            "",
            f"![{e['name']}]({e['figure']})",
            "",
            f"`{e['command']}`: {within} cells within {rule}; worst relative error {rel}, worst |z| {z}.",
        ]
    env = _environment(entries)
    lines += ["", "## Environment", ""] + [
        f"* {k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in env.items()
    ]
    return "\n".join(lines) + "\n"


def write_report(folder: pathlib.Path, selected: list[str], *, quick: bool) -> pathlib.Path:
    """Writes ``folder/index.html`` and ``folder/REPORT.md``; returns the HTML path."""
    entries = collect(folder, selected, quick=quick)
    page = folder / "index.html"
    atomic_write_text(page, _html(entries, folder, quick=quick))
    atomic_write_text(folder / "REPORT.md", _markdown(entries, quick=quick))
    return page
