"""The run report's self-contained HTML page (inline CSS, figures as base64 PNG data URLs)."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
       color: #222; max-width: 1180px; margin: 2em auto; padding: 0 1.2em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #e3e3e3; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f5f5; }
.left { color: #D55E00; } .right { color: #0072B2; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.notes li { margin: 0.2em 0; } .warn { color: #9a3c00; }
footer { margin-top: 2.5em; color: #777; font-size: 0.85em; border-top: 1px solid #ddd; }
"""


@dataclass(frozen=True, slots=True)
class HtmlFigure:
    name: str
    title: str
    caption: str
    png: bytes


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def fmt(value: float, digits: int = 1, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "–"
    if abs(value) < 0.5 * 10.0**-digits:
        value = 0.0  # no "-0.0"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    """An HTML table; cells are escaped here, so pass plain text."""
    head = "".join(
        f'<th class="{escape(classes[i])}">{escape(h)}</th>'
        if i < len(classes) and classes[i]
        else f"<th>{escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure_html(fig: HtmlFigure) -> str:
    return (
        f'<figure id="fig-{escape(fig.name)}">'
        f'<img src="{data_url(fig.png)}" alt="{escape(fig.title)}">'
        f"<figcaption><b>{escape(fig.title)}.</b> {escape(fig.caption)}</figcaption></figure>"
    )


def notes_html(notes: Sequence[tuple[str, bool]]) -> str:
    """A list of notes; (text, is_warning)."""
    items = "".join(
        f'<li class="warn">{escape(text)}</li>' if warn else f"<li>{escape(text)}</li>"
        for text, warn in notes
    )
    return f'<ul class="notes">{items}</ul>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]], footer: str) -> str:
    """sections: (heading, inner HTML already escaped/built)."""
    body = "".join(f"<h2>{escape(h)}</h2>\n{inner}\n" for h, inner in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>\n"
        f'<h1>{escape(title)}</h1><p class="meta">{escape(subtitle)}</p>\n{body}'
        f"<footer>{escape(footer)}</footer></body></html>\n"
    )
