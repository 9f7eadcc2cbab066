"""The report as one self-contained HTML page (inline CSS, PNGs embedded as base64 data URIs,
no script, nothing fetched from the network) and as ``report.json`` with every number shown."""

from __future__ import annotations

import base64
import html
import json
import os
from typing import Any

from duet import storage
from duet.report.common import Fact, Figure, Section, Table

STATUS = {"ok": "published", "partial": "partly published", "missing": "not published"}

CSS = """
:root { --ink: #1d2733; --muted: #5b6875; --line: #dde3ea; --ok: #2f8f4e; --partial: #c27c0e;
        --missing: #b23b3b; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
       Arial, sans-serif; color: var(--ink); background: #fff; }
header { padding: 22px 32px 14px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { margin: 0 0 4px; font-size: 24px; }
header .root { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 14px; margin: 0; }
header .meta { color: var(--muted); font-size: 13px; margin: 4px 0 0; }
nav { padding: 10px 32px; border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap;
      gap: 6px 18px; font-size: 14px; position: sticky; top: 0; background: #fff; z-index: 1; }
nav a { color: var(--ink); text-decoration: none; }
nav a:hover { text-decoration: underline; }
.dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 6px; }
.dot.ok { background: var(--ok); } .dot.partial { background: var(--partial); }
.dot.missing { background: var(--missing); }
main { padding: 6px 32px 40px; max-width: 1680px; }
section { padding: 18px 0 10px; border-bottom: 1px solid var(--line); }
h2 { font-size: 20px; margin: 0 0 10px; display: flex; align-items: center; gap: 12px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.badge { font-size: 12px; font-weight: 600; padding: 2px 8px; border-radius: 10px; color: #fff; }
.badge.ok { background: var(--ok); } .badge.partial { background: var(--partial); }
.badge.missing { background: var(--missing); }
.took { color: var(--muted); font-size: 12px; font-weight: normal; }
.missing-box { border-left: 4px solid var(--missing); background: #fbf1f1; padding: 8px 12px;
               margin: 8px 0; font-size: 14px; }
.missing-box code { background: #fff; padding: 1px 5px; border: 1px solid var(--line);
                    border-radius: 3px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 8px;
         margin: 8px 0 12px; }
.fact { background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
        padding: 7px 10px; }
.fact .v { font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums;
           overflow-wrap: anywhere; }
.fact .l { color: var(--muted); font-size: 12.5px; }
.figures { display: flex; flex-wrap: wrap; gap: 14px 22px; }
figure { margin: 6px 0; flex: 0 1 calc(50% - 11px); max-width: 860px; }
@media (max-width: 1100px) { figure { flex-basis: 100%; } }
figure img { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 3px; }
.tables { display: flex; flex-wrap: wrap; gap: 0 36px; align-items: flex-start; }
.table-block { max-width: 100%; }
.table-wrap { overflow-x: auto; margin: 4px 0 4px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left;
         vertical-align: top; max-width: 460px; overflow-wrap: anywhere; }
th { background: var(--panel); font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.note { color: var(--muted); font-size: 12.5px; margin: 2px 0 0; }
ul.notes { color: var(--muted); font-size: 13.5px; margin: 6px 0; padding-left: 20px; }
details { margin: 6px 0; font-size: 13px; }
pre { background: var(--panel); border: 1px solid var(--line); padding: 8px; overflow-x: auto;
      font-size: 12px; max-height: 420px; }
"""


def number(value: Any, unit: str = "") -> str:
    """A value as shown: thousands separators, at most 4 significant digits for fractions."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, int):
        text = f"{value:,}"
    elif value != value:  # NaN
        text = "n/a"
    elif abs(value) >= 1000 or float(value).is_integer():
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
    else:
        text = f"{value:.4g}"
    return f"{text} {unit}" if unit and text not in ("—", "n/a") else text


def _facts(facts: list[Fact]) -> str:
    cells = "".join(
        f'<div class="fact"><div class="v">{html.escape(number(f.value, f.unit))}</div>'
        f'<div class="l">{html.escape(f.label)}</div></div>'
        for f in facts
    )
    return f'<div class="facts">{cells}</div>' if facts else ""


def _figure(fig: Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (f'<figure id="fig-{html.escape(fig.key)}"><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(fig.title)}"><figcaption>{html.escape(fig.caption)}'
            "</figcaption></figure>")  # fmt: skip


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    numeric = [all(_numeric(r[i]) for r in table.rows if r[i] is not None)
               for i in range(len(table.columns))]  # fmt: skip
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{html.escape(number(v))}</td>' if numeric[i] else
                         f"<td>{html.escape(number(v))}</td>" for i, v in enumerate(row))
        + "</tr>" for row in table.rows
    )  # fmt: skip
    if not table.rows:
        body = f'<tr><td colspan="{len(table.columns)}">none</td></tr>'
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return (f'<div class="table-block"><h3 id="table-{html.escape(table.key)}">'
            f'{html.escape(table.title)}</h3><div class="table-wrap"><table><thead><tr>{head}'
            f"</tr></thead><tbody>{body}</tbody></table></div>{note}</div>")  # fmt: skip


def _missing(section: Section) -> str:
    items = []
    for m in section.missing:
        command = f" Make it with <code>{html.escape(m.command)}</code>" if m.command else ""
        items.append(f'<div class="missing-box"><b>{html.escape(m.what)}</b>: '
                     f"{html.escape(m.reason)}.{command}</div>")  # fmt: skip
    return "".join(items)


def _section(section: Section) -> str:
    status = section.status
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in section.notes)
    raw = "".join(f"<details><summary>{html.escape(title)}</summary><pre>"
                  f"{html.escape(json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False))}"
                  "</pre></details>" for title, doc in section.raw)  # fmt: skip
    return (
        f'<section id="{section.key}" data-status="{status}"><h2>{html.escape(section.title)}'
        f'<span class="badge {status}">{STATUS[status]}</span>'
        f'<span class="took">{section.seconds:.1f} s</span></h2>'
        f"{_missing(section)}{_facts(section.facts)}"
        f'<div class="figures">{"".join(_figure(f) for f in section.figures)}</div>'
        f'<div class="tables">{"".join(_table(t) for t in section.tables)}</div>'
        f"{f'<ul class=notes>{notes}</ul>' if notes else ''}{raw}</section>"
    )


def page(sections: list[Section], meta: dict[str, Any]) -> str:
    nav = "".join(f'<a href="#{s.key}"><span class="dot {s.status}"></span>{html.escape(s.title)}'
                  "</a>" for s in sections)  # fmt: skip
    run = f" · pair run {html.escape(meta['run'])}" if meta.get("run") else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>duet dataset report — {html.escape(meta['root'])}</title>"
        f"<style>{CSS}</style></head><body>"
        f'<header><h1>Dataset report</h1><p class="root">{html.escape(meta["root"])}</p>'
        f'<p class="meta">duet {html.escape(meta["duet_version"])} · generated '
        f"{html.escape(meta['generated_at'])}{run} · made in {meta['seconds']:.1f} s · "
        "every number on this page is also in report.json</p></header>"
        f"<nav>{nav}</nav><main>{''.join(_section(s) for s in sections)}</main></body></html>"
    )


def report_json(sections: list[Section], meta: dict[str, Any]) -> str:
    body = {**meta, "sections": {s.key: s.to_json() for s in sections}}
    return json.dumps(_plain(body), indent=1, ensure_ascii=False, allow_nan=False)


def _plain(value: Any):
    """JSON types only: numpy scalars and arrays become numbers and lists, NaN becomes null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and value != value:
        return None
    return value


def write(output: str, files: dict[str, str]) -> dict[str, str]:
    """Write each file under ``output``; locally through a temporary name and a rename, so a
    reader sees the previous report or the new one, never a half-written file."""
    written = {}
    for name, text in files.items():
        uri = storage.join(output, name)
        data = text.encode("utf-8")
        if storage.is_remote(uri):
            storage.write_bytes(uri, data)
        else:
            path = storage.local_path(uri)
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
        written[name] = uri
    return written
