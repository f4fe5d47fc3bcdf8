"""Error review: a self-contained HTML page of missed, duplicate and spurious detections.

Like E2E-Spot's viewer (``view.py``), each failure shows a strip of frame thumbnails around it
(frames within the tolerance framed), so a researcher sees where the model goes wrong. Matching is
one-to-one per class (see ``render.match_events``).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from e2espot.data.labels import Event, VideoLabels
from e2espot.data.timebase import frame_to_time_s
from e2espot.export.render import (
    _fmt_time,
    align_to_video,
    class_colors,
    hex_color,
    match_events,
    open_for_events,
    read_frames,
)


@dataclass(frozen=True)
class ReviewSummary:
    """Counts written into the page."""

    path: Path
    detected: int
    missed: int
    duplicate: int
    spurious: int


def _thumb(frame: np.ndarray, height: int) -> str:
    from PIL import Image

    img = Image.fromarray(frame)
    w = max(1, round(img.width * height / img.height))
    buf = io.BytesIO()
    img.resize((w, height)).save(buf, format="JPEG", quality=80)
    return base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;background:#fafafa;color:#222}
h1{font-size:1.4rem} h2{margin-top:2rem;border-bottom:1px solid #ccc}
table.sum td,table.sum th{padding:.2rem .8rem;text-align:left}
.item{margin:.6rem 0;padding:.4rem;background:#fff;border:1px solid #ddd;border-radius:6px}
.tag{display:inline-block;padding:0 .4rem;border-radius:4px;color:#fff;font-weight:600}
.strip{display:flex;gap:2px;overflow-x:auto;margin-top:.3rem}
.strip figure{margin:0;text-align:center;font-size:.7rem;color:#666}
.strip img{display:block;border:2px solid transparent}
.strip .tol img{border-color:#111}
.strip .at img{border-color:#e11}
.note{color:#666;font-size:.85rem}
@media (prefers-color-scheme: dark){body{background:#15171a;color:#ddd}.item{background:#1e2125;border-color:#333}
.strip .tol img{border-color:#ddd}}
"""


def write_review(
    video_path: str | Path,
    predictions: VideoLabels,
    truth: VideoLabels,
    out_path: str | Path,
    *,
    tolerance_frames: int = 2,
    context_frames: int = 3,
    thumb_height: int = 72,
    max_items: int = 100,
    min_score: float = 0.0,
) -> ReviewSummary:
    """Write an HTML report with sections *Missed*, *Duplicate* and *Spurious* detections.

    Each entry shows ``frame ± (tolerance + context)`` thumbnails (frames within tolerance framed,
    the event frame in red) and, for wrong predictions, the nearest same-label truth event. At most
    ``max_items`` entries per section carry thumbnails (highest scores / earliest first).
    """
    video_path, out_path = Path(video_path), Path(out_path)
    predictions_fps = predictions.fps
    with open_for_events(video_path, predictions_fps) as reader:  # the frames predict saw
        fps, num_video_frames = reader.fps, reader.num_frames
    predictions, truth = align_to_video(predictions, fps), align_to_video(truth, fps)
    preds = sorted((e for e in predictions.events if e.score is None or e.score >= min_score),
                   key=lambda e: (e.frame, e.label))
    gt = sorted(truth.events, key=lambda e: (e.frame, e.label))
    m = match_events(preds, gt, tolerance_frames)
    colors = class_colors(sorted({e.label for e in preds} | {e.label for e in gt}))

    def by_score(ids: list[int]) -> list[int]:
        return sorted(ids, key=lambda i: (-(preds[i].score or 0.0), preds[i].frame))[:max_items]

    sections: list[tuple[str, str, str, list[tuple[Event, str]]]] = [
        ("missed", "Missed", "Ground-truth events with no same-label prediction within tolerance.",
         [(gt[j], "") for j in m.missed[:max_items]]),
        ("duplicate", "Duplicate", "Extra predictions near a ground-truth event that another prediction "
         "already matched.", [(preds[i], _nearest(preds[i], gt, fps)) for i in by_score(m.duplicates)]),
        ("spurious", "Spurious", "Predictions with no same-label ground truth within tolerance.",
         [(preds[i], _nearest(preds[i], gt, fps)) for i in by_score(m.spurious)]),
    ]
    reach = tolerance_frames + context_frames
    limit = num_video_frames
    wanted = {f for _, _, _, items in sections for e, _ in items
              for f in range(e.frame - reach, e.frame + reach + 1) if 0 <= f < limit}
    frames = read_frames(video_path, sorted(wanted), fps=predictions_fps)

    counts = {"detected": len(m.pred_to_truth), "missed": len(m.missed),
              "duplicate": len(m.duplicates), "spurious": len(m.spurious)}
    esc = html.escape
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Review: {esc(predictions.video)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Error review: {esc(predictions.video)}</h1>",
        f"<p class='note'>{esc(str(video_path.name))} · {fps:g} fps · tolerance ±{tolerance_frames} frames · "
        f"{len(preds)} predictions (score ≥ {min_score:g}) · {len(gt)} ground-truth events</p>",
        "<table class='sum'><tr><th>Detected</th><th>Missed</th><th>Duplicate</th><th>Spurious</th></tr>",
        f"<tr><td id='count-detected'>{counts['detected']}</td><td id='count-missed'>{counts['missed']}</td>"
        f"<td id='count-duplicate'>{counts['duplicate']}</td><td id='count-spurious'>{counts['spurious']}</td></tr>"
        "</table>",
    ]
    for key, title, note, items in sections:
        out.append(f"<section id='{key}'><h2>{title} ({counts[key]})</h2><p class='note'>{esc(note)}</p>")
        if counts[key] > len(items):
            out.append(f"<p class='note'>showing {len(items)} of {counts[key]}</p>")
        for e, nearest in items:
            color = hex_color(colors[e.label])
            score = f" · score {e.score:.3f}" if e.score is not None else ""
            out.append(
                f"<div class='item' data-kind='{key}' data-frame='{e.frame}'>"
                f"<span class='tag' style='background:{color}'>{esc(e.label)}</span> "
                f"frame {e.frame} · {_fmt_time(frame_to_time_s(e.frame, fps))}{score}"
                f"{' · ' + esc(nearest) if nearest else ''}<div class='strip'>"
            )
            for f in range(e.frame - reach, e.frame + reach + 1):
                if f not in frames:
                    continue
                cls = "at" if f == e.frame else ("tol" if abs(f - e.frame) <= tolerance_frames else "")
                out.append(f"<figure class='{cls}'><img alt='frame {f}' src='data:image/jpeg;base64,"
                           f"{_thumb(frames[f], thumb_height)}'><figcaption>{f - e.frame:+d}</figcaption></figure>")
            out.append("</div></div>")
        out.append("</section>")
    out.append("</body></html>")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(out), encoding="utf-8")
    return ReviewSummary(out_path, **counts)


def _nearest(e: Event, truth: Sequence[Event], fps: float) -> str:
    same = [t for t in truth if t.label == e.label]
    if not same:
        return f"no '{e.label}' in the ground truth"
    t = min(same, key=lambda t: abs(t.frame - e.frame))
    d = e.frame - t.frame
    return f"nearest '{e.label}' truth at frame {t.frame} ({d:+d} frames, {d / fps:+.2f} s)"
