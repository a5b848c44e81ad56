"""Reports a person looks at: the HTML evaluation report, and training curves as a PNG.

The HTML evaluation report: every line's image above its reference and hypothesis, the
differences highlighted, worst lines first; the summary figures and the most frequent confusions
on top. One self-contained file (images embedded), readable offline in any browser.

Each line image is embedded as a small greyscale JPEG (40 px high, about 2-3 kB), so that a
report of 5,000 lines stays near 15 MB; sorting and filtering are a few lines of plain JavaScript.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterator, Sequence

from .metrics import Evaluation, LineResult, opcodes
from .preprocess import read_line_image

THUMB_HEIGHT = 40
OPEN_SUBSETS = 30  # a per-subset table longer than this starts folded

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
.line{border-top:1px solid #ddd;padding:.6em 0}.line img{display:block;max-width:100%;margin-bottom:.3em}
.t{font-family:ui-monospace,monospace;white-space:pre-wrap}.meta{color:#666;font-size:12px}
.del{background:#f9c0c0;text-decoration:line-through}.ins{background:#bfe8bf}.sub{background:#fde39a}
.err{color:#b00}#controls{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ccc}
"""

_SCRIPT = """
const lines=[...document.querySelectorAll('.line')];const box=document.getElementById('lines');
function update(){const min=parseFloat(document.getElementById('min').value)||0;
 const q=document.getElementById('q').value.toLowerCase();const order=document.getElementById('order').value;
 const key={worst:l=>-l.dataset.cer,best:l=>+l.dataset.cer,doc:l=>+l.dataset.n}[order];
 lines.sort((a,b)=>key(a)-key(b));let shown=0;
 for(const l of lines){const ok=l.dataset.cer*100>=min&&(!q||l.textContent.toLowerCase().includes(q));
  l.style.display=ok?'':'none';shown+=ok;box.appendChild(l);}
 document.getElementById('shown').textContent=shown;}
for(const id of ['min','q','order'])document.getElementById(id).addEventListener('input',update);update();
"""


def _thumbnail(source) -> str | None:
    try:
        image = read_line_image(source)
    except Exception:  # noqa: BLE001 - an unreadable line is reported in the page, not fatal to it
        return None
    width = max(1, round(image.width * THUMB_HEIGHT / max(image.height, 1)))
    buffer = io.BytesIO()
    image.resize((width, THUMB_HEIGHT)).save(buffer, "JPEG", quality=70)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _marked(line: LineResult) -> tuple[str, str]:
    """Reference and hypothesis as HTML, with deleted, inserted and substituted parts marked."""
    ref, hyp = [], []
    for tag, a, b in opcodes(line.reference, line.hypothesis or ""):
        a, b = html.escape(a), html.escape(b)
        if tag == "equal":
            ref.append(a)
            hyp.append(b)
        elif tag == "delete":
            ref.append(f'<span class="del">{a}</span>')
        elif tag == "insert":
            hyp.append(f'<span class="ins">{b}</span>')
        else:
            ref.append(f'<span class="sub">{a}</span>')
            hyp.append(f'<span class="sub">{b}</span>')
    return "".join(ref), "".join(hyp)


def _visible(text: str) -> str:
    """Spaces shown as ␣, so that a confused space is not an empty cell."""
    return text.replace(" ", "␣")


def _table(rows: Sequence[Sequence], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_report(ev: Evaluation, records: Sequence, details: dict, title: str) -> Iterator[str]:
    """The report page for an evaluation (``records`` give the line images, in ``ev.lines``' order),
    piece by piece: written out as it comes, a 5,000-line page (19 MB) is never whole in memory."""
    s = ev.summary()
    lo, hi = details["cer_graphemes_ci95"]
    summary = [
        ("lines", s["lines"]),
        ("unreadable lines", s["failed"]),
        ("CER", f"{s['cer']:.2%}"),
        ("CER on grapheme clusters (95 % CI)", f"{details['cer_graphemes']:.2%} ({lo:.2%}–{hi:.2%})"),
        ("CER, case-insensitive", f"{details['cer_case_insensitive']:.2%}"),
        ("CER, punctuation ignored", f"{details['cer_no_punctuation']:.2%}"),
        ("WER", f"{s['wer']:.2%}"),
        ("WER on Unicode words", f"{details['wer_unicode']:.2%}"),
        ("bag-of-words error", f"{details['bow_error_rate']:.2%}"),
        (
            "substitutions / deletions / insertions",
            f"{details['substitutions']} / {details['deletions']} / {details['insertions']}",
        ),
    ]
    yield from [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        _table(summary, ["figure", "value"]),
        "<h2>Most frequent confusions</h2>",
        _table(
            [
                (_visible(c["reference"]) or "(inserted)", _visible(c["hypothesis"]) or "(deleted)", c["count"])
                for c in details["confusions"]
            ],
            ["reference", "read as", "count"],
        ),
    ]
    if details.get("subsets"):
        rows = sorted(details["subsets"].items(), key=lambda kv: -kv[1]["cer"])
        # A long table (a mixed set has a subset per page) would push the lines off the first screens.
        folded = " open" if len(rows) <= OPEN_SUBSETS else ""
        yield from [
            f"<details{folded}><summary><h2 style='display:inline'>Per subset ({len(rows)})</h2></summary>",
            _table([(n, v["lines"], f"{v['cer']:.2%}") for n, v in rows], ["subset", "lines", "CER"]),
            "</details>",
        ]
    yield (
        "<h2>Lines</h2><div id='controls'>CER ≥ <input id='min' type='number' value='0' min='0' max='100' step='1' "
        "style='width:4em'> % · sort <select id='order'><option value='worst'>worst first</option>"
        "<option value='best'>best first</option><option value='doc'>as read</option></select> · "
        "text <input id='q' type='search' placeholder='find in the lines'> · <span id='shown'></span> shown</div>"
        "<div id='lines'>"
    )
    # Worst first already in the page (the script re-sorts on demand; without it the order still serves).
    order = sorted(range(len(ev.lines)), key=lambda k: -(ev.lines[k].cer if ev.lines[k].cer is not None else 1.0))
    for n in order:
        line, record = ev.lines[n], records[n]
        thumb = _thumbnail(record.image)
        image = f"<img alt='' src='data:image/jpeg;base64,{thumb}'>" if thumb else "<div class='err'>(no image)</div>"
        if line.error:
            ref, hyp = html.escape(line.reference), f"<span class='err'>{html.escape(line.error)}</span>"
        else:
            ref, hyp = _marked(line)
        cer = line.cer if line.cer is not None else 1.0
        yield (
            f"<div class='line' data-cer='{cer:.6f}' data-n='{n}'>{image}"
            f"<div class='t'>{ref}</div><div class='t'>{hyp}</div>"
            f"<div class='meta'>{html.escape(line.id)} · CER {cer:.1%}</div></div>"
        )
    yield f"</div><script>{_SCRIPT}</script></body></html>\n"


def plot_runs(runs: Sequence, out) -> None:
    """Training curves of one or more run folders (their metrics.jsonl) as one PNG: training loss,
    validation CER and learning rate against optimizer steps (left) and wall-clock hours (right)."""
    import json
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    from .errors import HandwriteError

    fig, axes = plt.subplots(3, 2, figsize=(11, 9), sharex="col")
    for run in map(Path, runs):
        path = run / "metrics.jsonl"
        try:
            records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, ValueError) as e:
            raise HandwriteError(f"{path}: not a run's metrics file ({e})") from None
        if not records:
            raise HandwriteError(f"{path}: holds no records yet")
        steps = [r["step"] for r in records]
        hours = [r["elapsed_s"] / 3600 for r in records]
        for row, key in enumerate(("train_loss", "val_cer", "lr")):
            values = [r[key] * (100 if key == "val_cer" else 1) for r in records]
            for col, x in enumerate((steps, hours)):
                axes[row][col].plot(x, values, marker="o", markersize=3, label=run.name)
    for row, label in enumerate(("training loss (CTC)", "validation CER (%)", "learning rate")):
        axes[row][0].set_ylabel(label)
        for col in (0, 1):
            axes[row][col].grid(alpha=0.3)
    axes[2][0].set_yscale("log")
    axes[2][1].set_yscale("log")
    axes[2][0].set_xlabel("optimizer steps")
    axes[2][1].set_xlabel("training time (hours)")
    axes[0][1].legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    from .atomic import atomic_write

    atomic_write(Path(out), lambda f: f.write(buffer.getvalue()))
