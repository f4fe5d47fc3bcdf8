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

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("labels", type=Path, help="E2E-Spot label dir or SoccerNet root")
    p.add_argument("videos", type=Path, help="folder of videos / prepared videos / frame folders")
    p.add_argument("-s", "--save-dir", "--save_dir", type=Path, required=True, help="run directory to write")
    p.add_argument("--config", type=Path, help="TOML file of option defaults (command-line flags win)")
    p.add_argument("--format", default=None, help="label format: spot (default for dirs) or soccernet")
    p.add_argument("--splits", type=Path, help="SoccerNet: JSON {train: [games], val: [...], test: [...]}")
    p.add_argument("--label-file", default="Labels-ball.json", help="SoccerNet label file name")
    m = p.add_argument_group("model")
    m.add_argument("-m", "--feature-arch", "--feature_arch", dest="arch", default="rny002_gsm",
                   help="backbone[_module], e.g. rny002_gsm, rny008_gsf, rn50_tsm, test_tiny (default rny002_gsm), "
                        "or adaspot_small / adaspot_big (AdaSpot; -t is ignored)")
    m.add_argument("-t", "--temporal-arch", "--temporal_arch", dest="head", default="gru",
                   help="temporal head: fc, gru, deeper_gru, lstm, mstcn, transformer, asformer, edsgp")
    m.add_argument("--temporal-stages", type=int, nargs="+", default=None,
                   help="backbone stages that get the temporal module (default: all)")
    m.add_argument("--pretrained", default=None,
                   help="'imagenet' (timm/torchvision download, online only) or a local weight file")
    m.add_argument("--displacement", type=int, default=0, metavar="R",
                   help="T-DEED displacement head with radius R frames (0: off)")
    d = p.add_argument_group("data")
    d.add_argument("--clip-len", "--clip_len", type=int, default=100)
    d.add_argument("--fps", type=float, default=None, help="resample videos to this fps (default: native)")
    d.add_argument("--height", type=int, default=224, help="resize frames to this height")
    d.add_argument("--width", type=int, default=None, help="fixed width (default: keep aspect)")
    d.add_argument("--crop-dim", "--crop_dim", dest="crop", type=int, default=None,
                   help="square random crop for training, centre crop for eval (default: none)")
    d.add_argument("--dilate-len", "--dilate_len", type=int, default=0)
    d.add_argument("--fg-upsample", "--fg_upsample", type=float, default=0.0,
                   help="probability of sampling a clip around an event")
    d.add_argument("--mixup", action=argparse.BooleanOptionalAction, default=True)
    d.add_argument("--augment", choices=["full", "flip", "none"], default="full",
                   help="full: crop, flip, colour jitter, blur (T-DEED); flip: crop and flip; none: crop only")
    d.add_argument("-j", "--num-workers", "--num_workers", type=int, default=2)
    o = p.add_argument_group("optimisation")
    o.add_argument("--batch-size", "--batch_size", type=int, default=8)
    o.add_argument("--num-epochs", "--num_epochs", type=int, default=50)
    o.add_argument("--epoch-clips", type=int, default=None, help="clips per epoch (default 500000/clip_len)")
    o.add_argument("-lr", "--learning-rate", "--learning_rate", dest="lr", type=float, default=1e-3)
    o.add_argument("--weight-decay", type=float, default=0.01)
    o.add_argument("--warmup-epochs", "--warm_up_epochs", type=int, default=3)
    o.add_argument("-ag", "--acc-grad-iter", "--acc_grad_iter", dest="acc_grad", type=int, default=1)
    o.add_argument("--loss", choices=["ce", "bce", "focal"], default="ce")
    o.add_argument("--fg-weight", type=float, default=5.0)
    o.add_argument("--focal-gamma", type=float, default=2.0)
    o.add_argument("--softic-weight", type=float, default=0.0, help="SoftIC loss weight (paper: 0.001)")
    o.add_argument("--softic-temperature", type=float, default=0.1)
    o.add_argument("--optimizer", choices=["adamw", "sam", "asam"], default="adamw")
    o.add_argument("--rho", type=float, default=0.05, help="SAM/ASAM neighbourhood size")
    o.add_argument("--start-val-epoch", "--start_val_epoch", type=int, default=None)
    o.add_argument("--criterion", choices=["map", "loss"], default="map")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--resume", action="store_true", help="continue from SAVE_DIR/last.pt exactly")
    o.add_argument("--checkpoint-every", type=int, default=0, help="also save last.pt every N steps")
    o.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    o.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.set_defaults(_parser_defaults={a.dest: a.default for a in p._actions if a.dest != "help"})


def run(args: argparse.Namespace) -> int:
    return run_training(options_from_args(args))


@dataclass(frozen=True)
class TrainJob:
    run_cfg: RunConfig
    opts: TrainOptions
    save_dir: Path
    resume: bool = False


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
    if backbone is None:  # -m adaspot_small / adaspot_big (e2espot.models.adaspot.training_config)
        from e2espot.models.adaspot import training_config

        model_cfg = training_config(args.arch, len(classes), args.clip_len, args.height, args.width, pretrained)
    else:
        model_cfg = ModelConfig(
            num_classes=len(classes), backbone=backbone, temporal_module=module,
            temporal_stages=tuple(args.temporal_stages) if args.temporal_stages else None, head=args.head,
            clip_len=args.clip_len, displacement=args.displacement > 0, pretrained=pretrained,
        )
    data_cfg = DataConfig(fps=args.fps, height=args.height, width=args.width, crop=args.crop,
                          clip_len=args.clip_len)
    opts = TrainOptions(
        num_epochs=args.num_epochs, epoch_clips=args.epoch_clips, batch_size=args.batch_size,
        acc_grad=args.acc_grad, lr=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        loss=args.loss, fg_weight=args.fg_weight, focal_gamma=args.focal_gamma,
        softic_weight=args.softic_weight, softic_temperature=args.softic_temperature,
        optimizer=args.optimizer, rho=args.rho, mixup=args.mixup, dilate_len=args.dilate_len,
        fg_upsample=args.fg_upsample, displacement_radius=args.displacement,
        start_val_epoch=args.start_val_epoch, criterion=args.criterion, num_workers=args.num_workers,
        device=args.device, precision=args.precision, seed=args.seed, checkpoint_every=args.checkpoint_every,
        augment=args.augment,
    )
    dataset = {
        "labels": str(Path(args.labels).resolve()), "videos": str(Path(args.videos).resolve()),
        "format": args.format or "spot", "label_file": args.label_file,
        "splits": str(Path(args.splits).resolve()) if args.splits else None,
    }
    run_cfg = RunConfig(model=model_cfg, data=data_cfg, classes=classes, train=opts.to_dict(), dataset=dataset)
    return TrainJob(run_cfg=run_cfg, opts=opts, save_dir=Path(args.save_dir), resume=args.resume)


def run_training(job: TrainJob, *, quiet: bool = False) -> int:
    """Load labels, align them to the videos, train with a progress bar, and draw the curves."""
    from tqdm import tqdm

    from e2espot.data.align import align_labels
    from e2espot.train.loop import train

    cfg = job.run_cfg
    ds = cfg.dataset
    videos = Path(ds["videos"])
    splits = Path(ds["splits"]) if ds.get("splits") else None
    kwargs: dict[str, Any] = {"fmt": ds["format"], "splits": splits, "label_file": ds["label_file"],
                              "classes": list(cfg.classes)}
    train_labels = align_labels(read_split(Path(ds["labels"]), "train", **kwargs), videos, cfg.data,
                                source="train split")
    try:
        val_raw = read_split(Path(ds["labels"]), "val", **kwargs)
    except LabelFormatError:
        val_raw = None
        log.warning("no validation split found: best epoch = last epoch")
    val_labels = align_labels(val_raw, videos, cfg.data, source="val split") if val_raw is not None else None

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

    result = train(cfg, train_labels, val_labels, job.save_dir, job.opts, resume=job.resume,
                   on_epoch_end=on_epoch_end, progress=progress)
    if result.best_epoch is not None and result.best_score is not None and not quiet:
        print(f"best epoch {result.best_epoch} (score {result.best_score:.4f}); run dir {job.save_dir}")
    return 0


def write_curves(save_dir: Path) -> None:
    """Loss and mAP curves (PNG) from metrics.json (matplotlib is a dependency: never skipped silently)."""
    from e2espot.export.plots import plot_training_curves

    metrics = save_dir / "metrics.json"
    if metrics.exists():
        plot_training_curves(metrics, save_dir / "curves.png")
