"""Property test: the synthetic labels survive `e2espot convert` through every pair of formats.

What a format cannot hold is dropped and named by convert ("not kept by FMT: ..."); everything both
formats hold comes back equal. The videos of `e2espot synth` give num_frames (and fps) back via --videos.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from e2espot.cli import main
from e2espot.data.formats import detect_format, list_formats, read_labels, write_labels
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.data.synthetic import generate_dataset

TARGET = {"spot": "t.json", "futsal": "t_futsal", "csv": "t.csv", "soccernet": "t_sn", "soccernet-results": "t_res"}
HOLDS = {  # what each format stores (fps of the SoccerNet formats: positions in ms, read back at 25 fps)
    "spot": {"fps", "num_frames", "empty_videos"},
    "futsal": {"num_frames", "empty_videos"},
    "csv": {"fps"},
    "soccernet": {"fps", "empty_videos"},
    "soccernet-results": {"fps", "empty_videos"},
}
EXTRA_CLASS = "FOUL"  # a class without events: its place in the class list must survive


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabelSet, Path]:
    root = tmp_path_factory.mktemp("syn")
    generate_dataset(root, num_videos=4, seed=3, tiny=True)
    labels = read_labels(root / "soccernet", "soccernet", probe_videos=True)  # ids league/season/game
    videos = []
    for i, v in enumerate(labels.videos):
        events = [Event(e.frame, e.label, team=("left", "right")[j % 2]) for j, e in enumerate(v.events)]
        videos.append(VideoLabels(v.video, 25, v.num_frames, events))
    videos[-1].events = []  # a video without events
    classes = [*labels.classes[:2], EXTRA_CLASS, *labels.classes[2:]]
    return LabelSet(classes, videos), root / "soccernet"


def _holds_team(fmt: str, tmp: Path) -> bool:
    probe = LabelSet(["a"], [VideoLabels("l/s/g", 25, 10, [Event(1, "a", team="left")])])
    path = tmp / f"probe_{fmt}" / TARGET[fmt]
    write_labels(probe, path, fmt)
    return read_labels(path, fmt).videos[0].events[0].team == "left"


def _view(labels: LabelSet, keep: set[str]) -> tuple:
    videos = []
    for v in labels.videos:
        if not v.events and "empty_videos" not in keep:
            continue
        events = sorted((e.frame, e.label, e.team if "team" in keep else None) for e in v.events)
        videos.append((v.video, float(v.fps) if "fps" in keep else None,
                       v.num_frames if "num_frames" in keep else None, events))
    return tuple(labels.classes), tuple(sorted(videos))


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(list_formats(), repeat=2)))
def test_every_pair_keeps_what_both_formats_hold(synth, tmp_path, capsys, src: str, dst: str) -> None:
    labels, videos_root = synth
    src_path = tmp_path / ("src_" + TARGET[src])
    write_labels(labels, src_path, src, **({} if src == "spot" else {"write_classes": True}))
    assert detect_format(src_path) == src  # every format's own output is detected
    dst_path = tmp_path / TARGET[dst]
    assert main(["convert", str(src_path), str(dst_path), "--to", dst, "--videos", str(videos_root)]) == 0
    out = capsys.readouterr().out.splitlines()
    back = read_labels(dst_path, dst, **({"probe_videos": False} if dst == "soccernet" else {}))

    keep = (HOLDS[src] & HOLDS[dst]) | (HOLDS[dst] & {"fps", "num_frames"})  # --videos fills both
    if _holds_team(src, tmp_path) and _holds_team(dst, tmp_path):
        keep.add("team")
    assert _view(back, keep) == _view(labels, keep)
    assert back.classes[2] == EXTRA_CLASS
    # convert names what it could not keep (compared with what it read)
    missing = {"num_frames"} - HOLDS[dst]
    if "empty_videos" in HOLDS[src] and "empty_videos" not in HOLDS[dst]:
        missing.add("video(s) without events")
    if "team" not in keep and _holds_team(src, tmp_path):
        missing.add("team")
    last = out[-1]
    if missing:
        assert last.startswith(f"not kept by {dst}: ") and all(m in last for m in missing), last
    if dst in ("spot",) and src in ("spot", "futsal"):
        assert last == "everything read was kept"


def test_label_folder_splits_stay_apart(synth, tmp_path, capsys) -> None:
    _, videos_root = synth
    spot_dir = videos_root.parent  # synth's own E2E-Spot folder: class.txt + train/val/test.json
    assert main(["convert", str(spot_dir), str(tmp_path / "spot2"), "--to", "spot"]) == 0
    assert "everything read was kept" in capsys.readouterr().out
    for split in ("train", "val", "test"):
        assert json.loads((tmp_path / "spot2" / f"{split}.json").read_text()) == json.loads(
            (spot_dir / f"{split}.json").read_text())
    assert (tmp_path / "spot2" / "class.txt").read_text() == (spot_dir / "class.txt").read_text().strip()
    assert main(["convert", str(spot_dir), str(tmp_path / "csv"), "--to", "csv"]) == 0
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["class.txt", "test.csv", "train.csv", "val.csv"]
    assert main(["convert", str(spot_dir), str(tmp_path / "one.json"), "--to", "spot"]) == 0
    assert "warning: the splits train, val, test are merged into one file" in capsys.readouterr().out
    # SoccerNet: one tree plus splits.json, which --splits reads
    assert main(["convert", str(spot_dir), str(tmp_path / "sn"), "--to", "soccernet"]) == 0
    splits = json.loads((tmp_path / "sn" / "splits.json").read_text())
    assert {k: len(v) for k, v in splits.items()} == {"train": 2, "val": 1, "test": 1}


def test_flat_ids_through_soccernet_are_reported(synth, tmp_path, capsys) -> None:
    _, videos_root = synth
    assert main(["convert", str(videos_root.parent / "test.json"), str(tmp_path / "sn"), "--to", "soccernet"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("not kept by soccernet: ") and "video ids (1 changed, e.g. 'synth_003' -> " in last
    # a half 1 alone comes back with an empty half 2: said, not silent
    one_half = LabelSet(["PASS"], [VideoLabels("l/s/g/1", 25, 48, [Event(3, "PASS")])])
    write_labels(one_half, tmp_path / "h.json", "spot")
    assert main(["convert", str(tmp_path / "h.json"), str(tmp_path / "sn2"), "--to", "soccernet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "not kept by soccernet: 1 empty video(s) added, e.g. 'l/s/g/2' "
        "(a SoccerNet game of two halves always reads back with both); num_frames of 1 video(s)")
