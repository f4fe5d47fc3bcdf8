"""Train a spotting model straight from video files (or prepared videos, or JPEG frame folders).

LABELS is an E2E-Spot label directory (class.txt + train.json + val.json) or a SoccerNet root
(--format soccernet, with --splits FILE.json mapping train/val/test to game folders). VIDEOS is the
folder holding the videos (ids resolved as <VIDEOS>/<video id>.mp4, frame folders, or SoccerNet game
folders). The run directory gets config.json, metrics.csv/json, TensorBoard events, loss and mAP
curves (PNG) and the best and last checkpoints only. Multi-GPU / multi-node: launch the same command
with torchrun (python -m torch.distributed.run --nproc-per-node N -m e2espot train ...).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.sources import read_split
from e2espot.errors import ConfigError, LabelFormatError
from e2espot.train.loop import TrainOptions
from e2espot.train.optim import LR_SCHEDULES

log = logging.getLogger(__name__)

DEFAULT_CLIP_LEN = 100  # E2E-Spot
DEFAULT_BATCH = 8  # E2E-Spot
CPU_BATCHES = (8, 4, 2, 1)  # auto batch on the CPU: the largest that fits
CPU_CLIP_LENS = (100, 64, 32, 16)  # auto clip length on the CPU when batch 1 does not fit
MEMORY_BUDGET = 0.8  # share of the available memory a training step may use


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("labels", type=Path, help="E2E-Spot label dir or SoccerNet root")
    p.add_argument("videos", type=Path, help="folder of videos / prepared videos / frame folders")
    p.add_argument("-s", "--save-dir", "--save_dir", type=Path, required=True,
                   help="run directory to write; must be new or empty unless --resume or --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="train afresh into a non-empty run directory: first delete the files a run writes "
                        "there (checkpoints, config, metrics, curves, TensorBoard events, predictions)")
    p.add_argument("--skip-missing", action="store_true",
                   help="train on the videos that exist when labels name videos missing from VIDEOS "
                        "(default: stop and list them)")
    p.add_argument("--config", type=Path, help="TOML file of option defaults (command-line flags win)")
    p.add_argument("--format", default=None, help="label format: spot (default for dirs) or soccernet")
    p.add_argument("--splits", type=Path, help="SoccerNet: JSON {train: [games], val: [...], test: [...]}")
    p.add_argument("--label-file", default="Labels-ball.json", help="SoccerNet label file name")
    from e2espot.models import list_backbones, list_heads, list_temporal_modules  # registries: choices, help
    from e2espot.models.losses import CLASSIFICATION_LOSSES
    from e2espot.train.optim import OPTIMIZERS

    m = p.add_argument_group("model")
    from e2espot.config import TASKS
    from e2espot.models.classifier import POOLINGS

    m.add_argument("--task", choices=TASKS, default="spot",
                   help="spot (default): per-frame event spotting; classify: one label per clip (the event "
                        "inside it, the one nearest the clip centre when several, else background) with a "
                        "backbone + temporal pooling + linear classifier; reports accuracy, per-class AP and "
                        "the confusion matrix (RUN/classify-val.json; e2espot test RUN -s SPLIT for a split)")
    m.add_argument("--pooling", choices=POOLINGS, default="mean",
                   help="--task classify: pooling of the clip's frame features (default mean)")
    m.add_argument("-m", "--feature-arch", "--feature_arch", dest="arch", default="rny002_gsm",
                   help=f"backbone[_module], e.g. rny002_gsm, rny008_gsf, rn50_tsm, x3d_s, test_tiny (default rny002_gsm); backbones: "
                        f"{', '.join(list_backbones())}; modules: {', '.join(list_temporal_modules())}; or adaspot_small / adaspot_big (AdaSpot; -t is ignored)")
    m.add_argument("-t", "--temporal-arch", "--temporal_arch", dest="head", default="gru",
                   choices=list_heads(), metavar="HEAD",
                   help=f"temporal head: {', '.join(list_heads())}")
    m.add_argument("--temporal-stages", type=int, nargs="+", default=None,
                   help="backbone stages that get the temporal module (default: all)")
    m.add_argument("--pretrained", default=None,
                   help="'imagenet': the backbone's published weights, downloaded (timm ImageNet; x3d_*: "
                        "PyTorchVideo Kinetics-400), or a local weight file")
    m.add_argument("--trainable-stages", type=int, default=None, metavar="N",
                   help="clip backbones (x3d_*): freeze the stem and all residual stages but the last N")
    m.add_argument("--displacement", type=int, default=0, metavar="R",
                   help="T-DEED displacement head with radius R frames (0: off)")
    m.add_argument("--team-head", action="store_true",
                   help="Team-BAS: a team head (one logit per frame, sigmoid = P(right), as sn-teamspotting's "
                        "baseline) trained with the team BCE on event frames; predictions carry left / right")
    m.add_argument("--team-joint", action="store_true",
                   help="Team-BAS, the 2025 winner's alternative: one class head over 2K classes "
                        "<action>-left/-right instead of a team head; every event needs a left / right team")
    m.add_argument("--team-weight", type=float, default=1.0,
                   help="weight of the team BCE in the loss (with --team-head; default 1)")
    d = p.add_argument_group("data")
    from e2espot.data.modality import list_modalities

    d.add_argument("--modality", default="rgb", choices=list_modalities(),
                   help="input frames (E2E-Spot's modalities): rgb (3 channels, ImageNet mean/std); gray (1 channel, "
                        "BT.601 luma 0.2989 R + 0.587 G + 0.114 B of any video, mean/std 0.5); flow (2 channels "
                        "dy, dx from E2E-Spot optical-flow JPEG folders VIDEOS/<video id>/%%06d.jpg, mean/std 0.5). "
                        "The backbone's first conv takes that many channels; --pretrained RGB weights are summed "
                        "(gray) or repeated and scaled by 3/C (flow) into it, as timm does")
    d.add_argument("--clip-len", "--clip_len", type=int, default=None,
                   help=f"frames per training clip (default {DEFAULT_CLIP_LEN}, E2E-Spot's; on the CPU shortened "
                        "when a clip of batch 1 would not fit in memory)")
    d.add_argument("--fps", type=float, default=None, help="resample videos to this fps (default: native)")
    d.add_argument("--height", type=int, default=None,
                   help="resize frames to this height (default: the source videos' height, never upscaled)")
    d.add_argument("--width", type=int, default=None, help="fixed width (default: keep aspect)")
    d.add_argument("--crop-dim", "--crop_dim", dest="crop", type=int, default=None,
                   help="square random crop for training, centre crop for eval (default: none)")
    d.add_argument("--dilate-len", "--dilate_len", type=int, default=0)
    d.add_argument("--fg-upsample", "--fg_upsample", type=float, default=0.0,
                   help="probability of sampling a clip around an event")
    d.add_argument("--mixup", action=argparse.BooleanOptionalAction, default=None,
                   help="mixup of clip pairs (default: on for --task spot, off for classify, which refuses it)")
    d.add_argument("--augment", choices=["full", "flip", "none"], default="full",
                   help="full: crop, flip, colour jitter, blur (T-DEED); flip: crop and flip; none: crop only")
    d.add_argument("-j", "--num-workers", "--num_workers", type=int, default=None,
                   help="loader worker processes (default: 2 on a GPU; on the CPU chosen per machine, "
                        "see README 'CPU threads')")
    d.add_argument("--threads", dest="num_threads", type=int, default=None,
                   help="CPU compute threads (default: the cores left after one per loader worker)")
    j = p.add_argument_group("joint training on a second label set (T-DEED pretrain; e2espot.train.joint)")
    j.add_argument("--joint-labels", default=None, metavar="DIR",
                   help="second dataset (its train and val splits, any class set, e.g. SoccerNet-v2 beside "
                        "SoccerNet-Ball): a second class head learns it, each clip's loss goes to its own "
                        "dataset's head, and the epoch log reports val mAP for both")
    j.add_argument("--joint-videos", default=None, metavar="DIR", help="folder of the second dataset's videos")
    j.add_argument("--joint-format", default=None, help="label format of --joint-labels: spot (default) or soccernet")
    j.add_argument("--joint-splits", default=None, help="SoccerNet: splits JSON of the second dataset")
    j.add_argument("--joint-label-file", default="Labels-v2.json",
                   help="SoccerNet label file name of the second dataset (default: Labels-v2.json)")
    j.add_argument("--joint-ratio", type=float, default=0.5,
                   help="probability that a clip comes from the second dataset (default 0.5, T-DEED's)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--batch-size", "--batch_size", type=int, default=None,
                   help=f"clips per optimiser step (default {DEFAULT_BATCH}, E2E-Spot's; on the CPU the largest of "
                        "8, 4, 2, 1 whose estimated step fits in memory)")
    o.add_argument("--num-epochs", "--num_epochs", type=int, default=50)
    o.add_argument("--epoch-clips", type=int, default=None, help="clips per epoch (default 500000/clip_len)")
    o.add_argument("-lr", "--learning-rate", "--learning_rate", dest="lr", type=float, default=1e-3)
    o.add_argument("--weight-decay", type=float, default=0.01)
    o.add_argument("--warmup-epochs", "--warm_up_epochs", type=int, default=3)
    o.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="cosine",
                   help="cosine (default): linear warm-up from 1%% of the LR, then a cosine to 0 that starts "
                        "after the warm-up; spot: jhong93/spot's schedule exactly (warm-up and cosine "
                        "multiplied from step 0, the cosine spanning num_epochs - warmup_epochs, so it "
                        "rises again after reaching 0)")
    o.add_argument("-ag", "--acc-grad-iter", "--acc_grad_iter", dest="acc_grad", type=int, default=1)
    o.add_argument("--loss", choices=CLASSIFICATION_LOSSES.names(), default="ce")
    o.add_argument("--fg-weight", type=float, default=5.0)
    o.add_argument("--focal-gamma", type=float, default=2.0)
    o.add_argument("--softic-weight", type=float, default=0.0, help="SoftIC loss weight (paper: 0.001)")
    o.add_argument("--softic-temperature", type=float, default=0.1)
    o.add_argument("--optimizer", choices=OPTIMIZERS.names(), default="adamw")
    o.add_argument("--rho", type=float, default=0.05, help="SAM/ASAM neighbourhood size")
    o.add_argument("--start-val-epoch", "--start_val_epoch", type=int, default=None)
    o.add_argument("--criterion", choices=["map", "loss"], default="map")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--resume", action="store_true", help="continue from SAVE_DIR/last.pt exactly")
    o.add_argument("--checkpoint-every", type=int, default=0, help="also save last.pt every N steps")
    o.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    o.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    o.add_argument("--wandb", default="off", choices=["off", "online", "offline"],
                   help="also log to Weights & Biases (pip install 'e2espot[wandb]'); offline: RUN/wandb/")
    o.add_argument("--wandb-project", default="e2espot", help="W&B project name (default e2espot)")
    from e2espot.commands._tracks import add_train_arguments as add_track_arguments

    add_track_arguments(p)  # --track-fusion etc. (object tracks)
    p.set_defaults(_parser_defaults={a.dest: a.default for a in p._actions if a.dest != "help"})


def run(args: argparse.Namespace) -> int:
    return run_training(options_from_args(args))


@dataclass(frozen=True)
class TrainJob:
    run_cfg: RunConfig
    opts: TrainOptions
    save_dir: Path
    resume: bool = False
    overwrite: bool = False
    skip_missing: bool = False
    auto_batch: bool = False  # --batch-size not given: fitted to the machine before training
    auto_clip_len: bool = False  # --clip-len not given: shortened on the CPU only if batch 1 does not fit
    joint: dict[str, Any] | None = None  # --joint-*: the second label set (e2espot.train.joint.load_joint_data)


def load_toml_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Apply ``--config FILE.toml`` values to options the user did not give on the command line."""
    if not getattr(args, "config", None):
        return args
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    path = Path(args.config)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: invalid TOML: {exc}") from None
    defaults = getattr(args, "_parser_defaults", {})
    for key, value in data.items():
        dest = key.replace("-", "_")
        if dest not in defaults:
            raise ConfigError(f"--config {path}: unknown option '{key}'; expected one of {sorted(defaults)}")
        if getattr(args, dest) == defaults[dest]:  # not given on the command line
            setattr(args, dest, value)
    return args


def options_from_args(args: argparse.Namespace) -> TrainJob:
    """Resolve a TrainJob from the parsed ``e2espot train`` arguments."""
    from e2espot.models import parse_arch

    args = load_toml_defaults(args)
    from e2espot.models.adaspot import PRESETS as ADASPOT_PRESETS

    backbone, module = (None, None) if args.arch in ADASPOT_PRESETS else parse_arch(args.arch)
    pretrained: bool | str = False
    if args.pretrained:
        pretrained = True if args.pretrained == "imagenet" else str(Path(args.pretrained).resolve())
    train_labels = read_split(Path(args.labels), "train", fmt=args.format, splits=args.splits,
                              label_file=args.label_file)
    classes = tuple(train_labels.classes)
    auto_batch, auto_clip = args.batch_size is None, args.clip_len is None
    saved = _saved_config(Path(args.save_dir)) if args.resume else None
    if saved is not None:  # --resume: what the run chose, not a new choice on a changed machine
        args.batch_size = args.batch_size or saved.train.get("batch_size")
        args.clip_len = args.clip_len or saved.data.clip_len
        args.height = args.height or saved.data.height
        auto_batch = auto_clip = False
    args.clip_len = args.clip_len or DEFAULT_CLIP_LEN
    args.batch_size = args.batch_size or DEFAULT_BATCH
    if args.height is None:
        args.height = _source_height(train_labels, Path(args.videos))
    team_head, team_joint = bool(getattr(args, "team_head", False)), bool(getattr(args, "team_joint", False))
    if team_head and team_joint:
        raise ConfigError("--team-head and --team-joint are two ways to predict the team; pass one of them")
    if getattr(args, "team_weight", 1.0) < 0:
        raise ConfigError(f"--team-weight {args.team_weight} must be >= 0")
    num_classes = len(classes) * (2 if team_joint else 1)  # a joint head: <action>-left/-right (train.team)
    modality = getattr(args, "modality", "rgb")
    if backbone is None:  # -m adaspot_small / adaspot_big (e2espot.models.adaspot.training_config)
        from e2espot.models.adaspot import training_config

        if modality != "rgb":
            raise ConfigError(f"--modality {modality}: -m {args.arch} (AdaSpot) reads RGB frames only; use "
                              "--modality rgb, or a backbone[_module] spotter such as rny002_gsm")
        if team_head:
            raise ConfigError(f"--team-head: -m {args.arch} has no team head; use --team-joint (one class head "
                              "over <action>-left/-right) or a backbone[_module] spotter such as rny002_gsm")
        model_cfg = training_config(args.arch, num_classes, args.clip_len, args.height, args.width, pretrained)
    else:
        model_cfg = ModelConfig(
            num_classes=num_classes, backbone=backbone, temporal_module=module,
            temporal_stages=tuple(args.temporal_stages) if args.temporal_stages else None, head=args.head,
            clip_len=args.clip_len, displacement=args.displacement > 0, pretrained=pretrained, team_head=team_head,
            backbone_kwargs={} if args.trainable_stages is None else {"trainable_stages": args.trainable_stages},
            modality=modality,
        )
    data_cfg = DataConfig(fps=args.fps or labels_fps(train_labels), height=args.height, width=args.width,
                          crop=args.crop, clip_len=args.clip_len)
    opts = TrainOptions(
        num_epochs=args.num_epochs, epoch_clips=args.epoch_clips, batch_size=args.batch_size,
        acc_grad=args.acc_grad, lr=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        lr_schedule=args.lr_schedule, num_threads=args.num_threads,
        loss=args.loss, fg_weight=args.fg_weight, focal_gamma=args.focal_gamma,
        softic_weight=args.softic_weight, softic_temperature=args.softic_temperature,
        optimizer=args.optimizer, rho=args.rho, dilate_len=args.dilate_len,
        mixup=args.mixup if args.mixup is not None else getattr(args, "task", "spot") == "spot",
        fg_upsample=args.fg_upsample, displacement_radius=args.displacement,
        start_val_epoch=args.start_val_epoch, criterion=args.criterion, num_workers=args.num_workers,
        device=args.device, precision=args.precision, seed=args.seed, checkpoint_every=args.checkpoint_every,
        augment=args.augment, wandb=args.wandb, wandb_project=args.wandb_project,
        team_weight=getattr(args, "team_weight", 1.0), team_joint=team_joint,
    )
    dataset = {
        "labels": str(Path(args.labels).resolve()), "videos": str(Path(args.videos).resolve()),
        "format": args.format or "spot", "label_file": args.label_file,
        "splits": str(Path(args.splits).resolve()) if args.splits else None,
    }
    task = getattr(args, "task", "spot")
    if task == "classify":
        model_cfg = _classify_model(args, model_cfg, backbone)
    run_cfg = RunConfig(model=model_cfg, data=data_cfg, classes=classes, train=opts.to_dict(), dataset=dataset,
                        task=task)
    from e2espot.commands._tracks import apply_train_arguments as apply_track_arguments

    run_cfg = apply_track_arguments(run_cfg, args)  # object tracks: model.track_fusion + data.tracks
    if task == "classify":
        from e2espot.train.classify import check_classify_options

        check_classify_options(opts, run_cfg)
    return TrainJob(run_cfg=run_cfg, opts=opts, save_dir=Path(args.save_dir), resume=args.resume,
                    overwrite=args.overwrite, skip_missing=args.skip_missing, auto_batch=auto_batch,
                    auto_clip_len=auto_clip, joint=_joint_record(args, task))


def _joint_record(args: argparse.Namespace, task: str = "spot") -> dict[str, Any] | None:
    """The ``--joint-*`` options as ``train.joint.load_joint_data`` reads them; None without --joint-labels."""
    labels, videos = getattr(args, "joint_labels", None), getattr(args, "joint_videos", None)
    if task == "classify" and (labels is not None or videos is not None):
        raise ConfigError("--task classify trains one clip classifier on one label set; drop --joint-labels / "
                          "--joint-videos (joint training is for spotting)")
    if labels is None:
        if videos is not None:
            raise ConfigError("--joint-videos needs --joint-labels (the second dataset's labels)")
        return None
    if videos is None:
        raise ConfigError("--joint-labels needs --joint-videos (the folder of the second dataset's videos)")
    if not 0.0 < args.joint_ratio < 1.0:
        raise ConfigError(f"--joint-ratio {args.joint_ratio}: the share of clips drawn from the second dataset "
                          "must be strictly between 0 and 1 (T-DEED: 0.5)")
    return {"labels": str(Path(labels).resolve()), "videos": str(Path(videos).resolve()),
            "format": args.joint_format or "spot", "ratio": args.joint_ratio,
            "splits": args.joint_splits, "label_file": args.joint_label_file}


def _classify_model(args: argparse.Namespace, model_cfg: ModelConfig, backbone: str | None) -> ModelConfig:
    """The clip classifier of ``--task classify`` (``train.classify``), refusing what it cannot take."""
    from e2espot.train.classify import classify_model_config

    if backbone is None:
        raise ConfigError(f"--task classify: -m {args.arch} (AdaSpot) is a spotting model; use a backbone[_module] "
                          "such as rny002_gsm or test_tiny")
    if args.head != getattr(args, "_parser_defaults", {}).get("head", args.head):
        raise ConfigError(f"--task classify: -t {args.head}: the classifier pools the clip's frames and has one "
                          "linear layer, no temporal head; drop -t (--pooling mean|max chooses the pooling)")
    if args.resume:
        raise ConfigError("--task classify: --resume is not supported (the classifier keeps no optimiser state); "
                          "train again with --overwrite")
    return classify_model_config(model_cfg, args.pooling)


def _saved_config(save_dir: Path) -> RunConfig | None:
    path = save_dir / "config.json"
    return RunConfig.load(path) if path.is_file() else None


def labels_fps(labels: Any) -> float | None:
    """The frame rate the labels count frames at, recorded as the run's fps when ``--fps`` is not given
    (never null when the labels agree), so ``predict`` resamples any video, variable frame rate included,
    to the rate the model was trained at and ``time_s`` are true times. None when the labels state no fps
    or several (each video is then read at its own rate, with a warning)."""
    import logging

    rates = {float(v.fps) for v in labels.videos if v.fps}
    if len(rates) == 1:
        return rates.pop()
    if rates:
        logging.getLogger("e2espot").warning(
            "the train videos' labels are at %d different frame rates (%s): the run records no fps, so "
            "predict reads each video at its own rate; pass --fps to train (and predict) at one rate",
            len(rates), ", ".join(f"{r:g}" for r in sorted(rates)))
    return None


def _source_height(labels: Any, videos: Path) -> int:
    """The height of the first train video found under ``videos`` (so small videos are never upscaled)."""
    from e2espot.data.video import find_video, probe_video
    from e2espot.errors import VideoError

    for video in labels.videos:
        try:
            return int(probe_video(find_video(videos, video.video)).height)
        except (VideoError, OSError):
            continue
    raise ConfigError(f"--height: no train video found under VIDEOS '{videos}' to take the height from; "
                      "pass --height or check VIDEOS (the second argument of e2espot train)")


def fit_to_machine(job: TrainJob, frame_hw: tuple[int, int], *, quiet: bool = False) -> TrainJob:
    """Estimate memory per step and time per epoch (``train.estimate``), choose the batch size (and, on
    the CPU, the clip length) when they were not given, print the estimate, and refuse a run whose step
    will not fit, naming the flags that fix it."""
    from dataclasses import replace

    from e2espot.device import resolve_device, resolve_precision
    from e2espot.train.estimate import (
        available_bytes,
        format_bytes,
        format_seconds,
        probe_step,
    )

    opts, cfg = job.opts, job.run_cfg
    device = resolve_device(opts.device)
    precision = resolve_precision(opts.precision, device)
    est = probe_step(cfg.model, frame_hw[0], frame_hw[1], device=device, precision=precision,
                     optimizer=opts.optimizer)
    avail = available_bytes(device)
    budget = None if avail is None else MEMORY_BUDGET * avail
    clip_lens = [cfg.data.clip_len]
    if job.auto_clip_len and device.type == "cpu":
        clip_lens += [c for c in CPU_CLIP_LENS if c < cfg.data.clip_len]
    batches = [opts.batch_size]
    if job.auto_batch and device.type == "cpu":
        batches = [b for b in CPU_BATCHES if b % opts.acc_grad == 0 and (opts.epoch_clips or b) >= b]
        batches = batches or [opts.batch_size]

    def fits(batch: int, clip_len: int) -> bool:
        return budget is None or est.step_bytes(batch // opts.acc_grad, clip_len) <= budget

    choice = next(((b, c) for c in clip_lens for b in batches if fits(b, c)), None)
    if choice is None:
        b, c = batches[-1], clip_lens[-1]
        need = est.step_bytes(max(1, b // opts.acc_grad), c)
        raise ConfigError(
            f"a training step needs about {format_bytes(need)} (batch {b} / -ag {opts.acc_grad} x {c} frames at "
            f"{est.height}x{est.width}, {precision}) but {format_bytes(avail)} is available on {device}. "
            "Lower --batch-size (raise -ag to keep the effective batch), --clip-len, or --height/--crop-dim"
        )
    batch, clip_len = choice
    if (batch, clip_len) != (opts.batch_size, cfg.data.clip_len):
        opts = replace(opts, batch_size=batch)
        cfg = replace(cfg, model=replace(cfg.model, clip_len=clip_len), data=replace(cfg.data, clip_len=clip_len),
                      train=opts.to_dict())
    epoch_clips = opts.resolved(clip_len).epoch_clips
    step = est.step_bytes(batch // opts.acc_grad, clip_len)
    if not quiet:
        chosen = " (chosen to fit)" if job.auto_batch and device.type == "cpu" else ""
        print(f"estimate: {format_bytes(step)} per training step (batch {batch}{chosen} x {clip_len} frames at "
              f"{est.height}x{est.width}, {precision})" + (f" of {format_bytes(avail)} available" if avail else "")
              + f"; ~{format_seconds(est.epoch_seconds(epoch_clips, clip_len, batch, opts.acc_grad))} per epoch of {epoch_clips} clips "
              f"on {device}, before validation")
    return replace(job, opts=opts, run_cfg=cfg)


def training_frame_size(cfg: RunConfig, labels: Any, videos: Path) -> tuple[int, int]:
    """(H, W) of the frames the model trains on: the crop, else the resized first video."""
    from e2espot.data.video import find_video, probe_video
    from e2espot.data.video.base import output_size

    d = cfg.data
    if d.crop:
        return d.crop, d.crop
    info = probe_video(find_video(videos, labels.videos[0].video))
    width, height = output_size(info.width, info.height, d.height, d.width)
    return height, width


def run_training(job: TrainJob, *, quiet: bool = False) -> int:
    """Load labels, align them to the videos, train with a progress bar, and draw the curves."""
    from tqdm import tqdm

    from e2espot.data.align import align_labels
    from e2espot.train.loop import train

    cfg = job.run_cfg
    ds = cfg.dataset
    videos = Path(ds["videos"])
    prepare_run_dir(job.save_dir, resume=job.resume, overwrite=job.overwrite)
    splits = Path(ds["splits"]) if ds.get("splits") else None
    kwargs: dict[str, Any] = {"fmt": ds["format"], "splits": splits, "label_file": ds["label_file"],
                              "classes": list(cfg.classes)}
    train_raw = read_split(Path(ds["labels"]), "train", **kwargs)
    try:
        val_raw = read_split(Path(ds["labels"]), "val", **kwargs)
    except LabelFormatError:
        val_raw = None
        log.warning("no validation split found: best epoch = last epoch")
    from e2espot.data.modality import check_sources

    for split in (train_raw, val_raw):  # flow: every video needs its flow folder (the error names it)
        if split is not None:
            check_sources(split, videos, cfg.model.modality)
    train_raw, val_raw = drop_missing_videos(train_raw, val_raw, videos, skip=job.skip_missing)
    train_labels = align_labels(train_raw, videos, cfg.data, source="train split")
    val_labels = align_labels(val_raw, videos, cfg.data, source="val split") if val_raw is not None else None
    job = fit_to_machine(job, training_frame_size(cfg, train_raw, videos), quiet=quiet)
    cfg = job.run_cfg

    bar = None

    def progress(stage: str, done: int, total: int, stats: dict[str, float]) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None or bar.total != total or done == 1:
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, desc=f"epoch {int(stats['epoch'])}", unit="step", file=sys.stderr,
                       leave=False)
        bar.update(done - bar.n)
        bar.set_postfix(loss=f"{stats['loss']:.4f}", clips_s=f"{stats['clips_per_s']:.2f}")

    def on_epoch_end(row: dict[str, Any]) -> None:
        if bar is not None:
            bar.close()
        write_curves(job.save_dir)

    if cfg.task == "classify":  # one label per clip: e2espot.train.classify
        from e2espot.train.classify import train_classifier

        result = train_classifier(cfg, train_labels, val_labels, job.save_dir, job.opts,
                                  on_epoch_end=on_epoch_end, progress=progress)
        if not quiet:
            print(classify_summary(result))
        return 0

    joint = None
    if job.joint is not None:  # --joint-labels: a second label set with its own head (e2espot.train.joint)
        from e2espot.train.joint import load_joint_data

        joint = load_joint_data(job.joint, cfg.data, label_file=job.joint["label_file"], splits=job.joint["splits"])
    result = train(cfg, train_labels, val_labels, job.save_dir, job.opts, resume=job.resume,
                   on_epoch_end=on_epoch_end, progress=progress, joint=joint)
    if not quiet:
        print(summary_line(result))
    return 0


def classify_summary(result: Any) -> str:
    """What ``train --task classify`` prints at the end: the best epoch's validation table, then one line."""
    from e2espot.eval.classify import format_clip_metrics

    where = f"run dir {result.save_dir}"
    if result.val_metrics is None:
        reason = f" ({result.unvalidated_reason})" if result.unvalidated_reason else ""
        return f"no epoch was validated{reason}: best.pt holds the last epoch, {result.best_epoch}; {where}"
    m = result.val_metrics
    return (f"val clips, epoch {result.best_epoch}:\n{format_clip_metrics(m)}\n"
            f"best epoch {result.best_epoch} (val accuracy {100 * m.accuracy:.2f} %) -> best.pt, "
            f"classify-val.json; {where}")


def summary_line(result: Any) -> str:
    """The one line printed when training ends (``result``: ``TrainResult``)."""
    where = f"run dir {result.save_dir}"
    if result.best_score is not None:
        what = (f"val mAP {result.best_score:.2f} %" if result.criterion == "map"
                else f"val loss {-result.best_score:.4f}")
        return f"best epoch {result.best_epoch} ({what}) -> best.pt; {where}"
    if result.best_epoch is not None:
        reason = f" ({result.unvalidated_reason})" if result.unvalidated_reason else ""
        return (f"no epoch was validated{reason}: best.pt holds the last epoch, {result.best_epoch}, "
                f"not a validated best; {where}")
    return f"training stopped before an epoch ended: last.pt holds the resume point (--resume); {where}"


# files and folders `e2espot train` and `e2espot test` write into a run directory
RUN_FILES = ("config.json", "best.pt", "last.pt", "best.pt.tmp", "last.pt.tmp", "metrics.csv", "metrics.json",
             "curves.png", "tensorboard")
RUN_GLOBS = ("pred-*", "results-*")


def prepare_run_dir(save_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse a non-empty ``-s`` folder unless ``--resume`` or ``--overwrite``; with ``--overwrite``
    delete what a run writes there (other files are kept and named in a warning)."""
    import shutil

    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other; pass one of them")
    if resume or not save_dir.exists():
        return
    if not save_dir.is_dir():
        raise ConfigError(f"-s {save_dir} is a file, not a folder; pass a folder for the run")
    entries = sorted(save_dir.iterdir())
    if not entries:
        return
    if not overwrite:
        shown = ", ".join(p.name for p in entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise ConfigError(
            f"-s {save_dir} is not empty ({len(entries)} entr{'ies' if len(entries) != 1 else 'y'}: {shown}); "
            "training would overwrite its checkpoints and mix its metrics. Pass --resume to continue that "
            "run, --overwrite to start it again, or another -s folder"
        )
    ours = {save_dir / n for n in RUN_FILES} | {p for g in RUN_GLOBS for p in save_dir.glob(g)}
    for path in entries:
        if path in ours:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    kept = [p.name for p in entries if p not in ours]
    if kept:
        log.warning(f"--overwrite: kept {len(kept)} file(s) that training does not write: {', '.join(kept[:10])}")


def drop_missing_videos(train: Any, val: Any, videos_root: Path, *, skip: bool) -> tuple[Any, Any]:
    """Check that every video the train/val labels name is under VIDEOS. Missing ones raise one
    VideoError that counts them and lists the first 10, or with ``skip`` are dropped with a warning."""
    from e2espot.data.labels import LabelSet
    from e2espot.data.video import find_video
    from e2espot.errors import VideoError

    if not videos_root.is_dir():
        raise VideoError(f"VIDEOS '{videos_root}' (the second argument of e2espot train) is not a folder; "
                         "pass the folder that holds the videos")
    missing: dict[str, list[str]] = {}
    total = 0
    for name, labels in (("train", train), ("val", val)):
        if labels is None:
            continue
        total += len(labels.videos)
        for v in labels.videos:
            try:
                find_video(videos_root, v.video)
            except VideoError:
                missing.setdefault(name, []).append(v.video)
    count = sum(len(m) for m in missing.values())
    if not count:
        return train, val
    listed = [f"{vid} ({name})" for name, ids in missing.items() for vid in ids][:10]
    what = (f"{count} of the {total} videos named in the labels are missing from VIDEOS '{videos_root}' "
            f"(the second argument of e2espot train): {', '.join(listed)}"
            + (f" and {count - 10} more" if count > 10 else ""))
    left = len(train.videos) - len(missing.get("train", []))
    if not skip:
        raise VideoError(f"{what}. Pass the folder that holds them as VIDEOS, or --skip-missing to train on the "
                         f"{total - count} that exist")
    if left == 0:
        raise VideoError(f"{what}; --skip-missing leaves no training video. Pass the folder that holds them as VIDEOS")
    log.warning(f"{what}; --skip-missing: training without them")

    def keep(labels: Any, name: str) -> Any:
        gone = set(missing.get(name, []))
        return LabelSet(list(labels.classes), [v for v in labels.videos if v.video not in gone])

    return keep(train, "train"), (keep(val, "val") if val is not None else None)


def write_curves(save_dir: Path) -> None:
    """Loss and mAP curves (PNG) from metrics.json (matplotlib is a dependency: never skipped silently)."""
    from e2espot.export.plots import plot_training_curves

    metrics = save_dir / "metrics.json"
    if metrics.exists():
        plot_training_curves(metrics, save_dir / "curves.png")
