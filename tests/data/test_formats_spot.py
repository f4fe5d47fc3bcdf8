"""E2E-Spot split JSON + class.txt: real fixtures byte for byte, predictions, and every error case."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from e2espot.data.formats import read_labels, write_labels
from e2espot.data.formats.spot import json_style
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import ConfigError, LabelFormatError

FIXTURE_FILES = [
    f"{ds}/{split}.json" for ds in ("finediving", "fs_comp", "fs_perf", "tennis") for split in ("val", "test")
]


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_round_trip_is_byte_identical(spot_fixtures: Path, tmp_path: Path, name: str) -> None:
    src = spot_fixtures / name
    labels = read_labels(src, "spot")
    written = write_labels(labels, tmp_path / "out.json", "spot", **json_style(src))
    assert written == [tmp_path / "out.json", tmp_path / "class.txt"]
    assert (tmp_path / "out.json").read_bytes() == src.read_bytes()
    assert (tmp_path / "class.txt").read_bytes() == (src.parent / "class.txt").read_bytes()
    again = read_labels(tmp_path / "out.json", "spot")
    assert again == labels


def test_fixture_styles_and_content(spot_fixtures: Path) -> None:
    assert json_style(spot_fixtures / "tennis/val.json") == {"indent": 2, "sort_keys": True}
    assert json_style(spot_fixtures / "fs_comp/val.json") == {"indent": 4, "sort_keys": False}
    diving = read_labels(spot_fixtures / "finediving", "spot", split="test")
    assert diving.classes == ["Entry", "Som(s).Pike", "Som(s).Tuck", "Twist(s)"]
    first = diving.videos[0]
    assert first.fps is None  # -1 in the file
    assert set(first.extra) == {"_source_info"}
    assert first.extra["_source_info"]["action_type"]
    # two FineDiving entries list num_events 3 but hold 2 events: kept, not "fixed"
    odd = diving.get("03__71")
    assert len(odd.events) == 2 and odd.extra["num_events"] == 3
    tennis = read_labels(spot_fixtures / "tennis" / "val.json")
    assert tennis.num_classes == 6 and tennis.class_id("far_court_bounce") == 1
    assert tennis.videos[0].events[0].comment == "extended dataset"


def test_label_dir_reads_splits(spot_fixtures: Path) -> None:
    val = read_labels(spot_fixtures / "fs_perf", split="val")
    both = read_labels(spot_fixtures / "fs_perf")
    assert len(val) == 94
    assert len(both) == 94 + 94  # val then test, ids distinct
    # concatenated splits remember where each video came from (extra["_split"]), so convert can write them back
    assert [v.extra.pop("_split") for v in both.videos] == ["val"] * 94 + ["test"] * 94
    assert both.videos[: len(val)] == val.videos
    with pytest.raises(LabelFormatError, match=r"split 'train' not found.*present: val, test"):
        read_labels(spot_fixtures / "fs_perf", split="train")


def _labels() -> LabelSet:
    return LabelSet(
        ["bounce", "swing"],
        [
            VideoLabels(
                "a",
                25.0,
                100,
                [Event(3, "swing", comment="x"), Event(50, "bounce", extra={"k": [1]})],
                width=640,
                height=360,
                extra={"_source_info": {"pad": [1, 2]}},
            ),
            VideoLabels("b", None, 10, []),
        ],
    )


def test_round_trip_dir_and_fps_unknown(tmp_path: Path) -> None:
    labels = _labels()
    written = write_labels(labels, tmp_path / "ds", "spot", split="val")
    assert written == [tmp_path / "ds" / "val.json", tmp_path / "ds" / "class.txt"]
    raw = json.loads(written[0].read_text())
    assert raw[1]["fps"] == -1 and raw[0]["num_events"] == 2
    assert raw[0]["events"][1] == {"frame": 50, "k": [1], "label": "bounce"}
    assert read_labels(tmp_path / "ds") == labels


def test_class_file_blank_lines_and_inferred_classes(tmp_path: Path) -> None:
    entry = [
        {
            "video": "v",
            "num_frames": 10,
            "events": [{"frame": 1, "label": "b"}, {"frame": 2, "label": "a"}],
            "fps": 30,
        }
    ]
    (tmp_path / "val.json").write_text(json.dumps(entry))
    assert read_labels(tmp_path / "val.json").classes == ["a", "b"]  # no class.txt: sorted
    (tmp_path / "class.txt").write_text("\nb\n\n  a \n\n")
    labels = read_labels(tmp_path / "val.json")
    assert labels.classes == ["b", "a"] and labels.class_id("a") == 2


def test_prediction_files_with_scores_and_gz(tmp_path: Path) -> None:
    preds = [
        {
            "video": "v1",
            "events": [{"label": "a", "frame": 4, "score": 0.9}, {"label": "b", "frame": 7, "score": 0.0123}],
            "fps": 25,
        }
    ]
    path = tmp_path / "pred-test.50.recall.json.gz"
    with gzip.open(path, "wt") as fp:
        json.dump(preds, fp)
    labels = read_labels(path)
    video = labels.videos[0]
    assert video.num_frames is None and [e.score for e in video.events] == [0.9, 0.0123]
    out = write_labels(labels, tmp_path / "again.json.gz", "spot", write_classes=False)
    with gzip.open(out[0], "rt") as fp:
        raw = json.load(fp)
    assert raw[0]["events"][0] == {"frame": 4, "label": "a", "score": 0.9, "time_s": 0.16}
    assert read_labels(out[0]) == labels  # time_s is derived, dropped on read
    assert (
        out[0].read_bytes()
        == write_labels(labels, tmp_path / "again.json.gz", "spot", write_classes=False)[0].read_bytes()
    )  # deterministic gzip


def _write(tmp_path: Path, data: object, classes: str | None = "a\nb") -> Path:
    path = tmp_path / "val.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    if classes is not None:
        (tmp_path / "class.txt").write_text(classes)
    return path


def _entry(**events: object) -> dict:
    event = {"frame": 5, "label": "a", **events}
    return {"video": "clip1", "num_frames": 100, "num_events": 1, "events": [event], "fps": 25}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            _entry(label="goal"),
            r"val\.json: video 'clip1', event #0: unknown class 'goal'; expected one of: a, b",
        ),
        (_entry(frame=100), r"video 'clip1', event #0: frame 100 >= num_frames 100"),
        (_entry(frame=-1), r"video 'clip1', event #0: frame -1 is negative"),
        (_entry(frame=2.5), r"video 'clip1', event #0: frame 2.5 is not an integer"),
        (
            {"video": "clip1", "num_frames": 10, "events": [{"label": "a"}]},
            r"entry #0 \(video 'clip1'\), event #0: missing key 'frame'",
        ),
        ({"num_frames": 10, "events": []}, r"val\.json: entry #0: missing key 'video'"),
        (
            {"video": "clip1", "num_frames": 10, "events": [], "fps": "x"},
            r"fps 'x' must be a positive number",
        ),
    ],
)
def test_errors_name_file_video_event_field(tmp_path: Path, entry: dict, expected: str) -> None:
    path = _write(tmp_path, [entry])
    with pytest.raises(LabelFormatError, match=expected):
        read_labels(path, "spot", strict=True)


def test_duplicate_video_ids(tmp_path: Path) -> None:
    path = _write(tmp_path, [_entry(), _entry()])
    with pytest.raises(LabelFormatError, match=r"duplicate video id 'clip1'"):
        read_labels(path, "spot")


def test_invalid_json_reports_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '[\n  {"video": "x",\n   "events": [}\n]')
    with pytest.raises(LabelFormatError, match=r"val\.json: invalid JSON at line 3"):
        read_labels(path, "spot")


def test_wrong_top_level_type(tmp_path: Path) -> None:
    path = _write(tmp_path, {"video": "x"})
    with pytest.raises(LabelFormatError, match=r"top level must be a JSON array of video entries, got dict"):
        read_labels(path, "spot")


def test_unknown_option_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, [_entry()])
    with pytest.raises(ConfigError, match=r"does not take option\(s\) \['label_file'\]"):
        read_labels(path, "spot", label_file="x.json")


def test_split_option_needs_a_folder(tmp_path: Path) -> None:
    path = _write(tmp_path, [_entry()])
    with pytest.raises(ConfigError, match=r"split='val' applies to a label folder"):
        read_labels(path, "spot", split="val")
