"""A report page as one list of blocks, rendered as Markdown and as one self-contained HTML file.

Written by hand: the pages are a handful of headings, paragraphs, tables and images, and the HTML must
embed its images and style (no file or network access when opened), which a template engine or a
Markdown library would not give us without as much code around it.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from shufflesearch._io import write_bytes_atomic, write_text_atomic

Block = tuple  # ("h", text) | ("p", text) | ("kv", [(k, v)]) | ("table", headers, rows) | ("img", file, alt) | ("code", text)


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: `digits` significant digits, thousands separators for large integers, None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10000:
        return f"{value:,d}"
    return str(value)


def _render_md(title: str, blocks: Sequence[Block]) -> str:
    out = [f"# {title}", ""]
    for b in blocks:
        if b[0] == "h":
            out += [f"## {b[1]}", ""]
        elif b[0] == "p":
            out += [b[1], ""]
        elif b[0] == "kv":
            out += [f"- **{k}**: {v}" for k, v in b[1]] + [""]
        elif b[0] == "table":
            cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731
            out += ["| " + " | ".join(map(cell, b[1])) + " |", "|" + "---|" * len(b[1])]
            out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in b[2]] + [""]
        elif b[0] == "img":
            out += [f"![{b[2]}]({b[1]})", ""]
        elif b[0] == "code":
            out += ["```", b[1], "```", ""]
    return "\n".join(out)


CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1150px;padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}h2{font-size:1.25em;
border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}table{border-collapse:collapse;
font-size:.88em;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;
vertical-align:top}th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}td.n{text-align:right;
font-variant-numeric:tabular-nums}img{max-width:100%;height:auto}pre{background:#f6f6f6;padding:.7em;
overflow-x:auto;white-space:pre-wrap}dl{display:grid;grid-template-columns:max-content auto;gap:.15em 1em}
dt{font-weight:600}dd{margin:0}"""


def _render_html(title: str, blocks: Sequence[Block], images: Mapping[str, bytes]) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    for b in blocks:
        if b[0] == "h":
            out.append(f"<h2>{e(b[1])}</h2>")
        elif b[0] == "p":
            out.append(f"<p>{e(b[1])}</p>")
        elif b[0] == "kv":
            out.append("<dl>" + "".join(f"<dt>{e(str(k))}</dt><dd>{e(str(v))}</dd>" for k, v in b[1]) + "</dl>")
        elif b[0] == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in b[1])
            body = "".join("<tr>" + "".join(
                f'<td class="n">{e(str(c))}</td>' if isinstance(c, (int, float)) or _numeric(c) else f"<td>{e(str(c))}</td>"
                for c in row) + "</tr>" for row in b[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b[0] == "img":
            data = base64.b64encode(images[b[1]]).decode()
            out.append(f'<p><img alt="{e(b[2])}" src="data:image/png;base64,{data}"></p>')
        elif b[0] == "code":
            out.append(f"<pre><code>{e(b[1])}</code></pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _numeric(text: Any) -> bool:
    try:
        float(str(text).replace(",", ""))
        return True
    except ValueError:
        return False


def write_page(out_dir: Path, stem: str, title: str, blocks: Sequence[Block], images: Mapping[str, bytes]) -> Path:
    """Write the images, `<stem>.md` and `<stem>.html` (images embedded) into `out_dir`; return the HTML path."""
    for name, data in images.items():
        write_bytes_atomic(out_dir / name, data)
    write_text_atomic(out_dir / f"{stem}.md", _render_md(title, blocks))
    write_text_atomic(out_dir / f"{stem}.html", _render_html(title, blocks, images))
    return out_dir / f"{stem}.html"
