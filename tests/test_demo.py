"""The demo: wiring and determinism on a tiny run (fast), and that the default demo learns (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2espot.demo import DemoOptions, expected_seconds, random_baseline_map, run_demo, verdict


def _tiny(out: Path, **kw) -> DemoOptions:
    base = {"out_dir": out, "num_videos": 4, "seconds": 3.0, "width": 64, "height": 48, "clip_len": 16,
            "batch_size": 4, "epochs": 2, "epoch_clips": 8, "val_epochs": 1, "num_workers": 0, "device": "cpu",
            "display_height": 96}
    return DemoOptions(**{**base, **kw})


def test_tiny_demo_writes_every_output_and_same_seed_gives_same_table(tmp_path):
    lines: list[str] = []
    first = run_demo(_tiny(tmp_path / "a"), log=lines.append)
    again = run_demo(_tiny(tmp_path / "b"))
    # fixed work, not a time budget: the same seed gives the same model, hence the same numbers
    for key in ("mAP@2", "mAP", "random_mAP@2", "per_class_ap@2", "thresholds", "steps", "best_epoch"):
        assert first[key] == again[key], key
    assert first["steps"] == 2 * 2 and first["units"] == "mAP and AP in percent"
    assert 0.0 <= first["mAP@2"] <= 100.0 and 0.0 < first["random_mAP@2"] < 100.0
    out = tmp_path / "a"
    files = first["files"]
    for key in ("annotated", "timeline", "class_ap"):
        assert Path(files[key]).stat().st_size > 0, key
    import av

    with av.open(files["annotated"]) as container:  # re-rendered for display: 2x the 48-px training frames
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (128, 96)
    assert not list(out.glob(".*display*"))
    assert (out / "run" / "best.pt").exists() and (out / "run" / "curves.png").exists()
    assert json.loads((out / "summary.json").read_text())["steps"] == first["steps"]
    text = "\n".join(lines)
    assert "2 epochs x 2 steps of 4 clips x 16 frames (4 steps, seed 2)" in text
    assert "expected: about" in text and "on a quiet 2-core CPU" in text
    assert any(line.startswith("[4/5]") for line in lines)
    assert "verdict: " in text and "random scores" in text
    # the headline names its list: without NMS (E2E-Spot's protocol) and after the run's NMS, both printed
    assert "A. without NMS: every (frame, class) scoring >= 0.01" in text and "B. after the run's NMS (hard NMS" in text
    assert f"mAP@2: {first['mAP@2']:.1f} % without NMS (A), {first['mAP_after_nms']['2']:.1f} % after NMS (B)" in text
    assert "mAP@2 without NMS = " in text  # the verdict names its list too
    assert set(first["per_class_ap@2_after_nms"]) == set(first["per_class_ap@2"])
    assert "4 videos x 3 s" in text and "1 test video in" in text  # singular and plural


def test_verdict_warns_when_the_model_did_not_learn():
    learned, text = verdict(0.047, 0.035)
    assert not learned and text.startswith("WARNING: the model did not learn") and "--epochs" in text
    learned, text = verdict(0.30, 0.035)
    assert learned and "less than this demo normally does" in text and "8.6x" in text and "reach 50 %" in text
    learned, text = verdict(0.30, 0.035, what="mAP@2 without NMS")
    assert "mAP@2 without NMS = 30.0 %" in text
    learned, text = verdict(0.55, 0.035)
    assert learned and text == "the model learned to spot the events: mAP@2 = 55.0 % vs 3.5 % for random scores (15.7x)."


def test_expected_time_follows_the_work_not_the_clock():
    opts = DemoOptions()
    ref = expected_seconds(opts, num_val_frames=6750, num_test_frames=6750)
    double = expected_seconds(DemoOptions(epochs=2 * opts.epochs), num_val_frames=6750, num_test_frames=6750)
    slow = expected_seconds(opts, num_val_frames=6750, num_test_frames=6750, speed=0.5)
    assert double["train"] > 1.8 * ref["train"]
    assert slow["total_after_synth"] == pytest.approx(2 * ref["total_after_synth"])
    # the README's "about 3 min" for the defaults: 2.7 min after the 25 s of rendering, well within issue 12's 6 min
    assert 2 * 60 < ref["total_after_synth"] < 4 * 60


def test_random_baseline_is_low_on_sparse_events(tmp_path):
    from e2espot.data.labels import Event, LabelSet, VideoLabels

    truth = LabelSet(["A"], [VideoLabels("v", 25.0, 500, [Event(100, "A"), Event(300, "A")])])
    assert random_baseline_map(truth)[0] < 0.2


@pytest.mark.slow
def test_default_demo_learns(tmp_path):
    """The default demo (fixed work: the same on any machine) clears issue 12's floor on the held-out videos:
    mAP@2 >= 50 % both without NMS and after the run's NMS, PASS, RECEIVE and SHOT >= 40 % each."""
    summary = run_demo(DemoOptions(out_dir=tmp_path / "demo"))
    # measured (seed 2, 700 steps at 64x36, 2026-11-30): without NMS mAP@2 55.9 % (PASS 80.4, RECEIVE 94.9,
    # SHOT 46.2, OUT 37.9, GOAL 19.9); after the run's NMS 59.7 % (PASS 80.9, RECEIVE 95.2, SHOT 46.5,
    # OUT 43.1, GOAL 33.1); random scores 2.9 %
    assert summary["learned"] and "verdict" in summary
    assert summary["mAP@2"] >= 50.0, summary["per_class_ap@2"]
    assert summary["mAP_after_nms"]["2"] >= 50.0, summary["per_class_ap@2_after_nms"]
    for name in ("PASS", "RECEIVE", "SHOT"):
        assert summary["per_class_ap@2"][name] >= 40.0, (name, summary["per_class_ap@2"])
        assert summary["per_class_ap@2_after_nms"][name] >= 40.0, (name, summary["per_class_ap@2_after_nms"])
    assert summary["mAP@2"] > 10 * summary["random_mAP@2"]
