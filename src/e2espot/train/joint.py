"""Joint training on two label sets, one class head each (T-DEED's ``pretrain`` / ``joint_train``).

T-DEED (arturxe2/T-DEED @ HEAD, ``train_tdeed.py``, ``dataset/frame.py: ActionSpotDatasetJoint``,
``model/model.py: update_labels_2heads`` and the double-head branch of ``TDEEDModel.epoch``) trains its
SoccerNet-Ball models with SoccerNet-v2 as a second dataset: the model gets a second class head
(``update_pred_head([K + 1, K2 + 1])``), every clip of a batch comes from dataset 1 or dataset 2 with
probability 1/2 each, and each clip's cross-entropy is computed on its own dataset's head only, summed over
the batch and divided by the batch size. T-DEED validates mAP on the main dataset only.

Here (``train(..., joint=JointData(...))``, CLI ``e2espot train --joint-labels DIR --joint-videos DIR``):

* Model: ``ModelConfig.extra_num_classes = K2`` (the head the published T-DEED import also uses);
  ``SpotterOutput.logits`` is the main head (K + 1), ``SpotterOutput.extra_logits`` the second (K2 + 1).
* Mixing rule: clip ``index`` of an epoch comes from the second dataset when
  ``numpy.random.default_rng([seed, index, MIX_STREAM]).random() < ratio`` (default 0.5, T-DEED's), else
  from the main one; so it depends on (seed, index) only, like every clip (exact resume, any worker count).
  With mixup both clips of an item come from the same dataset. The epoch keeps ``epoch_clips`` clips.
* Targets: a second-dataset clip's class ids are moved past the main ones (``c`` -> ``K + 1 + c``, the
  background too; T-DEED ``update_labels_2heads``), so one soft-target matrix (B, T, K + 1 + K2 + 1) holds
  both; the item's ``dataset`` (0 main, 1 second) says which head it belongs to. Team targets (main
  dataset with ``--team-head``) are -1 (none) on second-dataset clips.
* Loss (``JointLoss``): the main ``SpottingLoss`` on the main clips' rows (columns ``0..K``), a second
  ``SpottingLoss`` over K2 classes on the second clips' rows (columns ``K+1..``, ``extra_logits``); the
  total is their clip-weighted mean, ``(n1 · L1 + n2 · L2) / B``, as T-DEED's per-clip sum / B. The
  displacement MSE applies to both, SoftIC and the team BCE to the main dataset only. A head without
  clips in a batch gets a zero-weighted term, so every parameter has a gradient (DDP).
* Validation: the validation loss is over mixed clips drawn by the same rule; the mAP (``val_map``) is the
  main head's on the main val split (best-epoch selection, thresholds), and ``val_map_joint`` the second
  head's on the second val split (``validation_map`` through ``ExtraHeadView``), both in the epoch log,
  ``metrics.csv`` / ``metrics.json``.
* Record: ``config.json`` keeps the main classes in ``classes`` and ``train["joint"] = {"classes": [...],
  "labels", "videos", "format", "ratio"}``; ``predict`` / ``test`` use the main head (the second head is
  built from ``model.extra_num_classes`` and ignored).

Both datasets are read at the run's ``DataConfig`` (fps, height, width, crop), so their frames must come
out the same size (a ``ConfigError`` says which flags fix it). Not combined with ``--team-joint``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from e2espot.config import RunConfig
from e2espot.data.labels import LabelSet
from e2espot.errors import ConfigError, E2ESpotError

MIX_STREAM = 7_919  # third key of the per-clip mixing generator (keeps it apart from the clip draw)
DEFAULT_RATIO = 0.5  # T-DEED ActionSpotDatasetJoint: random.random() < 0.5 -> dataset 1
JOINT_KEY = "joint"  # RunConfig.train key of the record


@dataclass(frozen=True)
class JointData:
    """The second label set of a joint run (aligned to the run's fps), and how often its clips are drawn.

    ``videos``: the folder its video ids resolve in; ``reader_factory`` (tests) replaces it.
    ``labels_path`` / ``fmt`` are only recorded in ``config.json``.
    """

    train: LabelSet
    val: LabelSet | None
    videos: str | Path | None
    ratio: float = DEFAULT_RATIO
    reader_factory: Callable | None = None
    labels_path: str | None = None
    fmt: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.ratio, (int, float)) and 0.0 < self.ratio < 1.0):
            raise ConfigError(f"--joint-ratio {self.ratio!r}: the share of clips drawn from the second dataset "
                              "must be strictly between 0 and 1 (T-DEED: 0.5)")
        if len(self.train) == 0:
            raise ConfigError("joint training: the second dataset's train split has no videos")
        if self.videos is None and self.reader_factory is None:
            raise ConfigError("joint training: give the second dataset's video folder (--joint-videos)")

    @property
    def classes(self) -> list[str]:
        return list(self.train.classes)


def configure(run_cfg: RunConfig, joint: JointData, *, team_joint: bool) -> RunConfig:
    """``run_cfg`` with the second class head (``model.extra_num_classes`` = K2) and ``train["joint"]``.

    Raises ConfigError with ``--team-joint`` (its 2K flip-swapped classes are not combined with a second
    label space here), with object-track fusion (the second head is validated without tracks) and for a
    model without a second head (AdaSpot).
    """
    if team_joint:
        raise ConfigError("--joint-labels with --team-joint is not supported; use --team-head for the team "
                          "(as the Team-BAS baseline, which has the second head too)")
    if run_cfg.model.head == "adaspot":
        raise ConfigError("--joint-labels: AdaSpot has no second class head; use a backbone[_module] spotter")
    if run_cfg.model.track_fusion is not None:
        raise ConfigError("--joint-labels with --track-fusion: the second dataset's head is validated without "
                          "object tracks; train with one of them")
    k2 = len(joint.classes)
    record = {"classes": joint.classes, "labels": joint.labels_path, "videos": None if joint.videos is None
              else str(joint.videos), "format": joint.fmt, "ratio": float(joint.ratio)}
    return replace(run_cfg, model=replace(run_cfg.model, extra_num_classes=k2),
                   train={**run_cfg.train, JOINT_KEY: record})


class JointClipDataset(Dataset):
    """Clips of ``main`` and ``extra`` (two ClipDatasets / ValidationClips of the same length), mixed per index.

    Item ``index``: from ``extra`` when ``default_rng([seed, index, MIX_STREAM]).random() < ratio`` (then its
    ``labels`` (and ``labels2``) are shifted by ``num_main_classes + 1`` and ``team`` is -1 where ``main``
    has team targets), else from ``main``; ``dataset`` (int64 scalar) is 0 or 1.
    """

    def __init__(self, main: Any, extra: Any, *, ratio: float, seed: int) -> None:
        if len(main) != len(extra):
            raise ConfigError(f"joint clips: {len(main)} main clips but {len(extra)} second-dataset clips")
        self.main, self.extra = main, extra
        self.ratio, self.seed = float(ratio), int(seed)
        self.train = main.train
        self.offset = main.num_classes + 1
        self.team = bool(getattr(main, "team", False))

    def __len__(self) -> int:
        return len(self.main)

    def source(self, index: int) -> int:
        """0 (main) or 1 (second dataset) for item ``index``."""
        return int(np.random.default_rng([self.seed, int(index), MIX_STREAM]).random() < self.ratio)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not self.source(index):
            item = self.main[index]
            item["dataset"] = torch.tensor(0, dtype=torch.int64)
            return item
        item = self.extra[index]
        for key in ("labels", "labels2"):
            if key in item:
                item[key] = item[key] + self.offset  # (T,) ids past the main head's K + 1 columns
        if self.team:
            for suffix in ("", "2") if "frames2" in item else ("",):
                item[f"team{suffix}"] = torch.full((len(item["labels"]),), -1.0)
        item["dataset"] = torch.tensor(1, dtype=torch.int64)
        return item

    def close(self) -> None:
        for ds in (self.main, self.extra):
            if hasattr(ds, "close"):
                ds.close()


def _frame_size(dataset: Any) -> tuple[int, int]:
    reader = dataset._reader(0, dataset.labels.videos[0])
    return int(reader.height), int(reader.width)


def wrap_dataset(main: Any, joint: JointData, run_cfg: RunConfig, opts: Any, *, validation: bool = False,
                 seed: int | None = None) -> JointClipDataset:
    """The joint dataset over ``main`` (the loop's ``ClipDataset`` / ``ValidationClips``) and a dataset of the
    same kind and length over ``joint`` (its train or val split) with the same sampling options."""
    from e2espot.data.datasets import ClipDataset, ValidationClips

    common = {"dilate_len": opts.dilate_len, "displacement_radius": opts.displacement_radius,
              "reader_factory": joint.reader_factory, "video_root": joint.videos}
    seed = opts.seed if seed is None else seed
    if validation:
        if joint.val is None or not len(joint.val):
            raise ConfigError("joint training: the second dataset has no val split, but the run validates on "
                              "the main one; add a val split to --joint-labels")
        extra = ValidationClips(joint.val, run_cfg.data, num_clips=len(main), seed=seed + 1, **common)
    else:
        extra = ClipDataset(joint.train, run_cfg.data, epoch_clips=len(main), fg_upsample=opts.fg_upsample,
                            mixup=opts.mixup, seed=seed + 2, train=True, **common)
    size_main, size_extra = _frame_size(main), _frame_size(extra)
    main.close()
    extra.close()
    if size_main != size_extra:  # (batches are stacked before the device crops them)
        raise ConfigError(
            f"joint training: the main videos are read at {size_main[1]}x{size_main[0]} but the second "
            f"dataset's at {size_extra[1]}x{size_extra[0]} (same --height, other aspect ratio); clips of one "
            "batch must have one size: pass --width too"
        )
    return JointClipDataset(main, extra, ratio=joint.ratio, seed=seed)


def _rows(output: Any, rows: torch.Tensor, extra: bool) -> Any:
    """The SpotterOutput of the clips ``rows`` (B,) bool; ``extra``: the second head as ``logits``."""
    def pick(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[rows]

    if extra:
        logits = output.extra_logits[rows]  # (n, T, K2 + 1)
        return output._replace(logits=logits, stage_logits=[logits], displacement=pick(output.displacement),
                               features=output.features[rows], team=None, extra_logits=None)
    return output._replace(logits=output.logits[rows], stage_logits=[s[rows] for s in output.stage_logits],
                           displacement=pick(output.displacement), features=output.features[rows],
                           team=pick(output.team), extra_logits=None)


class JointLoss(nn.Module):
    """``main`` (SpottingLoss over K) on the main clips, ``extra`` (SpottingLoss over K2) on the second.

    ``forward(output, target)``: ``target`` as the loop gives SpottingLoss (``labels`` soft (B, T, K+1+K2+1),
    ``displacement``, ``valid``, ``team``) plus ``dataset`` (B,) int (0 main, 1 second). Returns
    ``(n_main · L_main + n_extra · L_extra) / B``; ``last_parts`` holds both terms.
    """

    def __init__(self, main: nn.Module, extra: nn.Module, num_main_classes: int) -> None:
        super().__init__()
        self.main, self.extra = main, extra
        self.split = num_main_classes + 1
        self.last_parts: dict[str, float] = {}

    def forward(self, output: Any, target: Mapping[str, Any]) -> torch.Tensor:
        dataset = target.get("dataset")
        if dataset is None:
            raise ConfigError("joint loss: the batch has no 'dataset' key; build it with JointClipDataset")
        if output.extra_logits is None:
            raise ConfigError("joint loss: the model has no second class head (ModelConfig.extra_num_classes)")
        labels = target["labels"]
        if labels.ndim != 3 or labels.shape[-1] != self.split + output.extra_logits.shape[-1]:
            raise ConfigError(f"joint loss: targets {tuple(labels.shape)} are not soft (B, T, "
                              f"{self.split} + {output.extra_logits.shape[-1]})")
        second = dataset.to(labels.device).bool()  # (B,)
        total = labels.new_zeros(())
        parts: dict[str, float] = {}
        for name, rows, loss_fn, cols in (("main", ~second, self.main, slice(0, self.split)),
                                          ("joint", second, self.extra, slice(self.split, None))):
            n = int(rows.sum())
            if n == 0:  # keep the unused head in the graph (DDP needs a gradient for every parameter)
                head = output.logits if name == "main" else output.extra_logits
                total = total + 0.0 * head.sum()
                continue
            sub = {"labels": labels[rows][..., cols]}
            for key in ("displacement", "valid"):
                if target.get(key) is not None:
                    sub[key] = target[key][rows]
            if name == "main" and target.get("team") is not None:
                sub["team"] = target["team"][rows]
            value = loss_fn(_rows(output, rows, extra=name == "joint"), sub)
            parts[name] = float(value.detach())
            total = total + value * (n / len(second))
        self.last_parts = parts
        return total


def wrap_loss(main_loss: nn.Module, run_cfg: RunConfig, opts: Any) -> JointLoss:
    """``JointLoss`` of the loop's SpottingLoss and one over the second dataset's K2 classes (same loss kind,
    foreground weight, displacement; no SoftIC, no team term)."""
    from e2espot.models.losses import SpottingLoss

    k2 = run_cfg.model.extra_num_classes
    extra = SpottingLoss(k2, opts.loss, fg_weight=opts.fg_weight, focal_gamma=opts.focal_gamma,
                         displacement_weight=1.0 if opts.displacement_radius > 0 else 0.0, team_weight=0.0)
    return JointLoss(main_loss, extra, len(run_cfg.classes))


def num_target_classes(run_cfg: RunConfig, num_classes: int) -> int:
    """K' for ``DeviceAugment``: the main K plus the second head's K2 + 1 columns."""
    return num_classes + run_cfg.model.extra_num_classes + 1


class ExtraHeadView(nn.Module):
    """A Spotter seen through its second class head: ``logits`` = ``extra_logits`` (for ``predict_scores``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @staticmethod
    def _view(out: Any) -> Any:
        return out._replace(logits=out.extra_logits, stage_logits=[out.extra_logits], team=None,
                            extra_logits=None)

    def forward(self, x: torch.Tensor) -> Any:
        return self._view(self.model(x))

    def forward_head(self, features: torch.Tensor) -> Any:
        return self._view(self.model.forward_head(features))

    @property
    def has_frame_features(self) -> bool:
        return bool(getattr(self.model, "has_frame_features", False))

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model.frame_features(frames)


def extra_run_config(run_cfg: RunConfig, joint: JointData) -> RunConfig:
    """The run config as the second head sees it: its classes, no team, its video folder."""
    model = replace(run_cfg.model, num_classes=len(joint.classes), extra_num_classes=0, team_head=False)
    train = {k: v for k, v in run_cfg.train.items() if k not in ("team_joint", "postprocess", JOINT_KEY)}
    dataset = {**run_cfg.dataset, "videos": None if joint.videos is None else str(joint.videos)}
    return replace(run_cfg, model=model, classes=tuple(joint.classes), train=train, dataset=dataset)


def validate(row: dict[str, Any], model: nn.Module, run_cfg: RunConfig, joint: JointData, opts: Any, *,
             device: Any, precision: str) -> None:
    """Add ``val_map_joint`` (percent, the second head's E2E-Spot mAP on the second val split, averaged over
    ``opts.val_tolerances``, as ``val_map``) to the epoch ``row``; nothing without a second val split."""
    from e2espot.train.history import map_percent
    from e2espot.train.loop import validation_map

    if joint.val is None or not len(joint.val):
        return
    row["val_map_joint"] = map_percent(validation_map(
        ExtraHeadView(model), extra_run_config(run_cfg, joint), joint.val, opts, device=device, precision=precision,
        reader_factory=joint.reader_factory))


_JOINT_FLAGS = (("--splits", "--joint-splits"), ("--label-file", "--joint-label-file"), ("--format", "--joint-format"),
                ("--videos", "--joint-videos"))


def _joint_message(message: str, labels: Path, label_file: str) -> str:
    """A label reader's error about the second dataset, with the ``--joint-*`` flags in place of the main ones."""
    for flag, joint_flag in _JOINT_FLAGS:
        message = re.sub(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", joint_flag, message)
    hint = f" (--joint-label-file picks the file; it is {label_file} now)" if label_file in message else ""
    return f"second dataset (--joint-labels {labels}): {message}{hint}"


def load_joint_data(record: Mapping[str, Any], data_cfg: Any, *, label_file: str = "Labels-ball.json",
                    splits: str | None = None) -> JointData:
    """Read the second dataset named by a ``--joint-*`` record (train and, when present, val split) and align
    its frames to the run's ``data_cfg`` (what ``e2espot train`` does for the main one)."""
    from e2espot.data.align import align_labels
    from e2espot.data.sources import read_split
    from e2espot.errors import LabelFormatError

    labels, videos = Path(record["labels"]), Path(record["videos"])
    if not videos.is_dir():
        raise ConfigError(f"--joint-videos '{videos}' is not a folder; pass the folder that holds the second "
                          "dataset's videos")
    kwargs = {"fmt": record.get("format"), "splits": Path(splits) if splits else None, "label_file": label_file}
    try:
        train_raw = read_split(labels, "train", **kwargs)
        try:
            val_raw = read_split(labels, "val", **kwargs, classes=list(train_raw.classes))
        except LabelFormatError:
            val_raw = None
        train = align_labels(train_raw, videos, data_cfg, source="joint train split")
        val = align_labels(val_raw, videos, data_cfg, source="joint val split") if val_raw is not None else None
    except E2ESpotError as exc:  # the readers name the main dataset's flags: name this dataset's
        raise type(exc)(_joint_message(str(exc), labels, label_file)) from None
    return JointData(train, val, videos, ratio=float(record.get("ratio", DEFAULT_RATIO)),
                     labels_path=str(labels.resolve()), fmt=record.get("format"))


__all__ = ["DEFAULT_RATIO", "ExtraHeadView", "JointClipDataset", "JointData", "JointLoss", "configure",
           "extra_run_config", "load_joint_data", "num_target_classes", "validate", "wrap_dataset", "wrap_loss"]
