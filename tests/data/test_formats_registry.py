"""Format registry: every format round-trips the same labels; detection; unknown names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2espot.data.formats import detect_format, list_formats, read_labels, write_labels
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import LabelFormatError, UnknownNameError

GAME = "italy_serie-a/2016-2017/2016-08-20 - 18-00 Juventus 2 - 1 Fiorentina"


def _labels(fmt: str) -> tuple[LabelSet, dict, dict]:
    """Labels each format can hold, plus read and write options."""
    if fmt in ("soccernet", "soccernet-results"):
        score = 0.75 if fmt == "soccernet-results" else None
        videos = [
            VideoLabels(
                f"{GAME}/{h}",
                25.0,
                None,
                [Event(25 * h, "Goal", score=score), Event(60 * h, "Foul", score=score)],
            )
            for h in (1, 2)
        ]
        return LabelSet(["Foul", "Goal"], videos), {"probe_videos": False} if fmt == "soccernet" else {}, {}
    events = [Event(0, "a", score=0.5, team="left"), Event(9, "b", score=0.25, team="right")]
    videos = [
        VideoLabels("v1", 25.0, None if fmt == "csv" else 10, events),
        VideoLabels("v2", 25.0, None if fmt == "csv" else 20, [Event(3, "a", score=1.0, team="left")]),
    ]
    return LabelSet(["a", "b"], videos), {"fps": 25.0} if fmt in ("csv", "futsal") else {}, {}


def _normalise(labels: LabelSet) -> list[tuple]:
    return [
        (v.video, v.fps, v.num_frames, [(e.frame, e.label, e.score, e.team) for e in v.events])
        for v in labels.videos
    ]


TARGETS = {"spot": "s/val.json", "futsal": "f", "soccernet": "sn", "soccernet-results": "res", "csv": "e.csv"}


def test_registry_keys() -> None:
    assert list_formats() == ["spot", "futsal", "soccernet", "soccernet-results", "csv"]
    assert set(TARGETS) == set(list_formats())


@pytest.mark.parametrize("fmt", list(TARGETS))
def test_every_format_round_trips_and_is_detected(tmp_path: Path, fmt: str) -> None:
    labels, read_opts, write_opts = _labels(fmt)
    written = write_labels(labels, tmp_path / TARGETS[fmt], fmt, **write_opts)
    assert written and all(p.is_file() for p in written)
    again = read_labels(tmp_path / TARGETS[fmt], fmt, **read_opts)
    assert again.classes == labels.classes
    assert _normalise(again) == _normalise(labels)
    assert detect_format(tmp_path / TARGETS[fmt]) == fmt
    assert _normalise(read_labels(tmp_path / TARGETS[fmt], **read_opts)) == _normalise(labels)


def test_unknown_format_name(tmp_path: Path) -> None:
    with pytest.raises(
        UnknownNameError, match=r"unknown label format 'sp0t'; did you mean 'spot'\? Available: csv"
    ):
        read_labels(tmp_path, "sp0t")
    with pytest.raises(UnknownNameError, match=r"unknown label format 'soccernet_results'; did you mean"):
        write_labels(LabelSet([]), tmp_path, "soccernet_results")


def test_detect_format_errors(tmp_path: Path) -> None:
    with pytest.raises(LabelFormatError, match=r"no such file or folder"):
        detect_format(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(
        LabelFormatError, match=r"notes\.txt: cannot tell its label format; pass it explicitly"
    ):
        detect_format(tmp_path / "notes.txt")
    # a folder holding both an E2E-Spot split and SoccerNet games
    (tmp_path / "mix" / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "mix" / "a" / "b" / "c" / "Labels-v2.json").write_text('{"annotations": []}')
    (tmp_path / "mix" / "val.json").write_text("[]")
    with pytest.raises(LabelFormatError, match=r"ambiguous label format, looks like spot and soccernet"):
        detect_format(tmp_path / "mix")
    (tmp_path / "bad.json").write_text("[1, 2,")
    with pytest.raises(LabelFormatError, match=r"bad\.json: invalid JSON at line 1"):
        detect_format(tmp_path / "bad.json")


def test_detect_by_content(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"annotations": []}))
    assert detect_format(tmp_path / "x.json") == "soccernet"
    (tmp_path / "x.json").write_text(json.dumps({"predictions": []}))
    assert detect_format(tmp_path / "x.json") == "soccernet-results"
    (tmp_path / "x.json").write_text(json.dumps([{"video": "v", "events": [], "fps": 25}]))
    assert detect_format(tmp_path / "x.json") == "spot"
    (tmp_path / "x.json").write_text(
        json.dumps({"video": "v", "num_frames": 3, "events": [{"frame": 1, "label": "a", "team": "l"}]})
    )
    assert detect_format(tmp_path / "x.json") == "futsal"
