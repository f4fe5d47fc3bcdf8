"""A model with the team head learns the team on synthetic data whose frames carry a team cue (slow).

``e2espot synth --team-cue possession`` draws a broadcast-style arrow pointing the way the team of the latest
event attacks (README "Team Ball Action Spotting"); without a cue the team must be read from the play, which
the tiny CPU models did not learn in short runs (45-58 %, chance). This asserts the floor of the team
accuracy on correctly spotted events (``eval.team.team_accuracy``, matched within 4 frames) of a short run
with horizontal flips on (a flip mirrors the arrow and swaps the team targets).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.sources import read_split
from e2espot.data.synthetic import generate_dataset
from e2espot.eval.team import team_accuracy
from e2espot.infer.split import predict_split
from e2espot.train.loop import TrainOptions, train

TEAM_ACCURACY_FLOOR = 0.80  # chance is 0.5 (left / right about equally often)


@pytest.mark.slow
def test_team_head_learns_the_team_from_the_possession_cue(tmp_path: Path):
    data = tmp_path / "data"
    generate_dataset(data, num_videos=8, seconds=20.0, seed=2, width=96, height=54, zoom=2.5, soccernet=False,
                     team_cue="possession")
    tr, va = read_split(data, "train"), read_split(data, "val")
    classes = tuple(tr.classes)
    run_cfg = RunConfig(
        model=ModelConfig(num_classes=len(classes), backbone="test_tiny", temporal_module="tsm", head="gru",
                          clip_len=32, team_head=True),
        data=DataConfig(height=54, clip_len=32), classes=classes, dataset={"videos": str(data / "videos")},
    )
    opts = TrainOptions(num_epochs=6, epoch_clips=160, batch_size=8, lr=3e-3, warmup_epochs=1, fg_upsample=0.5,
                        mixup=False, augment="flip", dilate_len=1, start_val_epoch=5, num_workers=1,
                        num_threads=1, device="cpu", precision="fp32", seed=2)
    train(run_cfg, tr, va, tmp_path / "run", opts)
    out = predict_split(tmp_path / "run", "test", device="cpu", precision="fp32")
    acc = team_accuracy(out.truth, out.ranked, tolerance=4)
    assert acc.total >= 30, acc  # enough spotted events to measure it
    assert acc.accuracy >= TEAM_ACCURACY_FLOOR, acc
