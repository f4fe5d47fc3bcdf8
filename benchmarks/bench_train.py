"""Training throughput (clips/s) and loader stall fraction: raw videos vs prepared short-GOP videos
vs a jhong93/spot-style JPEG-frame pipeline, with the same model, clips, batch and workers.

Pipelines (same ``ClipDataset`` sampling and seed, so the same clips; mixup off):

* ``raw``: ``ClipDataset`` over the source videos (broadcast-like GOP, decoded and resized by PyAV);
* ``prepared``: ``ClipDataset`` over ``prepare_videos(..., gop=8)`` output at the training height;
* ``jpeg``: ``prepare_videos(..., jpeg=True)`` frame folders read one file at a time with
  ``torchvision.io.read_image(path).float() / 255`` in the workers, as spot's ``FrameReader`` does.

The loop is lean (not ``e2espot.train.loop.train``): loader -> augmentation (``DeviceAugment``: flip,
colour jitter, blur; the JPEG pipeline gets the same ops on its float frames) -> model under the
precision context -> ``SpottingLoss`` -> backward -> AdamW. ``stall_fraction`` = time spent waiting
for the next batch / total step time, after ``--warmup`` steps. ``loader_clips_per_s`` is the loader
alone (no model): what a fast accelerator could be fed. Pipelines run in rotating blocks, each with a
fresh loader; medians over blocks.

``--compare-threads`` (issue 18) measures instead, with the same loop on the prepared and the raw
videos, "1 compute thread + 1 loader worker process" against "2 compute threads + the loader in the
training process" (``torch.set_num_threads`` switched between blocks, alternating), and reports
``ratio_inprocess_over_worker`` per pipeline: what ``e2espot train`` picks per machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import Workdir, base_parser, emit, log, median, r3, reencode, tree_bytes  # noqa: E402

from e2espot.data.datasets import ClipDataset  # noqa: E402
from e2espot.data.transforms import DeviceAugment  # noqa: E402

TARGET_SPEEDUP = 1.5  # prepared / jpeg clips per second
TARGET_BYTES = 0.1  # prepared bytes / jpeg bytes


class JpegClipDataset(ClipDataset):
    """spot-style clips: one JPEG file per frame, decoded and made float on the CPU (in the worker).

    Same sampling and targets as ``ClipDataset`` (so the same clips for a seed); ``frames`` is
    (T, 3, H, W) float32 in [0, 1], zero frames where the clip runs past the video's ends.
    """

    def __init__(self, *args: Any, frame_root: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frame_root = Path(frame_root)

    def read(self, clip) -> dict[str, torch.Tensor]:
        from torchvision.io import read_image

        from e2espot.data.sampling import clip_targets

        video = self.labels.videos[clip.video_idx]
        num_frames = self._index.num_frames[clip.video_idx]
        folder = self.frame_root / video.video
        imgs, shape = [], None
        for frame_idx in range(clip.start, clip.start + self.clip_len):
            if 0 <= frame_idx < num_frames:
                img = read_image(str(folder / f"{frame_idx:06d}.jpg")).float() / 255  # (3, H, W) as spot
                shape = img.shape
            else:
                img = None
            imgs.append(img)
        if shape is None:
            shape = read_image(str(folder / "000000.jpg")).shape
        frames = torch.stack([torch.zeros(shape) if im is None else im for im in imgs])  # (T, 3, H, W)
        index = self._index
        targets = clip_targets(index.event_frames[clip.video_idx], index.event_classes[clip.video_idx],
                               clip.start, self.clip_len, num_frames)
        return {"frames": frames, "labels": torch.from_numpy(targets.labels),
                "displacement": torch.from_numpy(targets.displacement),
                "valid": torch.from_numpy(targets.valid),
                "video_idx": torch.tensor(clip.video_idx), "start": torch.tensor(clip.start)}


class FloatAugment(DeviceAugment):
    """``DeviceAugment``'s ops and random draws on frames that are already float (the JPEG pipeline)."""

    @staticmethod
    def _check_frames(frames: torch.Tensor, name: str) -> None:
        pass

    def _to_float(self, frames: torch.Tensor, lam: torch.Tensor | None, sign: float) -> torch.Tensor:
        return frames.permute(0, 1, 4, 2, 3).contiguous()  # (B, T, 3, H, W), already in [0, 1]


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 (auto as train)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (train default 2)")
    parser.add_argument("--clip-len", type=int, default=None, help="frames per clip (default 32, quick 8)")
    parser.add_argument("--batch-size", type=int, default=None, help="clips per batch (default 4, quick 2)")
    parser.add_argument("--height", type=int, default=None, help="training height (default 112, quick 48)")
    parser.add_argument("--steps", type=int, default=None, help="measured steps per block (default 4)")
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured steps per block (default 2)")
    parser.add_argument("--raw-gop", type=int, default=250, help="GOP of the raw videos (broadcast-like)")
    parser.add_argument("--compare-threads", action="store_true",
                        help="1 thread + 1 worker vs 2 threads + in-process loader (prepared and raw videos)")
    args = parser.parse_args(argv)

    import torchvision.io  # noqa: F401  (imported once here, not in every forked worker)

    import e2espot.data.video.pyav_backend  # noqa: F401
    from e2espot.config import DataConfig, ModelConfig
    from e2espot.data.datasets import make_loader
    from e2espot.data.prepare import prepare_videos
    from e2espot.data.synthetic import generate_dataset
    from e2espot.data.transforms import to_device
    from e2espot.device import autocast, resolve_device, resolve_precision
    from e2espot.models import create_spotter
    from e2espot.models.losses import SpottingLoss

    if args.quick:
        src_w, src_h, num_videos, seconds = 64, 48, 2, 2.0
        height, clip_len, batch, steps, warmup, loader_batches = 48, 8, 2, 1, 1, 2
        backbone, module = "test_tiny", "tsm"
    else:
        src_w, src_h, num_videos, seconds = 398, 224, 4, 30.0
        height, clip_len, batch, steps, warmup, loader_batches = 112, 32, 4, 4, 2, 12
        backbone, module = "rny002", "gsm"
    height, clip_len = args.height or height, args.clip_len or clip_len
    batch, steps, warmup = args.batch_size or batch, args.steps or steps, args.warmup or warmup
    repeats = args.repeats or (1 if args.quick else 2)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    amp = autocast(device, precision)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    with Workdir(args.workdir) as work:
        log(f"rendering {num_videos} synthetic videos, {src_w}x{src_h}, {seconds:g} s")
        ds = generate_dataset(work / "synth", num_videos=num_videos, seconds=seconds, width=src_w,
                              height=src_h, splits=(1, 0, 0), soccernet=False)
        labels = ds.labels["train"]
        raw_dir = work / "raw"
        for vid, path in ds.videos.items():
            reencode(path, raw_dir / f"{vid}.mp4", gop=args.raw_gop)
        log("prepare: short-GOP mp4 and JPEG folders")
        t0 = time.perf_counter()
        prepare_videos(raw_dir, work / "prepared", fps=ds.fps, height=height, gop=8)
        prep_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        prepare_videos(raw_dir, work / "jpeg", fps=ds.fps, height=height, jpeg=True)
        jpeg_s = time.perf_counter() - t0
        disk = {"raw": tree_bytes(raw_dir), "prepared": tree_bytes(work / "prepared"),
                "jpeg": tree_bytes(work / "jpeg")}

        data_cfg = DataConfig(fps=ds.fps, height=height, clip_len=clip_len)
        epoch_clips = 100_000
        common = dict(epoch_clips=epoch_clips, seed=0, mixup=False)
        datasets = {
            "raw": ClipDataset(labels, data_cfg, video_root=raw_dir, **common),
            "prepared": ClipDataset(labels, data_cfg, video_root=work / "prepared", **common),
            "jpeg": JpegClipDataset(labels, data_cfg, video_root=work / "jpeg", frame_root=work / "jpeg",
                                    **common),
        }
        num_classes = len(labels.classes)
        torch.manual_seed(0)
        model = create_spotter(ModelConfig(num_classes=num_classes, backbone=backbone, temporal_module=module,
                                           head="gru", clip_len=clip_len)).to(device)
        model = model.to(memory_format=torch.channels_last).train()
        loss_fn = SpottingLoss(num_classes, "ce", displacement_weight=0.0).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        augs = {"raw": DeviceAugment(num_classes, None, seed=0),
                "prepared": DeviceAugment(num_classes, None, seed=0),
                "jpeg": FloatAugment(num_classes, None, seed=0)}

        def loader(name: str, epoch: int, workers: int | None = None):
            dl = make_loader(datasets[name], batch, args.workers if workers is None else workers, device=device,
                             persistent_workers=False, epoch=epoch)
            return iter(dl)

        def train_block(name: str, epoch: int, workers: int | None = None) -> dict[str, float]:
            batches = loader(name, epoch, workers)
            wait = total = 0.0
            for step in range(warmup + steps):
                t0 = time.perf_counter()
                cpu_batch = next(batches)
                t1 = time.perf_counter()
                b = to_device(cpu_batch, device)
                if name == "jpeg":
                    b["frames"] = b["frames"].permute(0, 1, 3, 4, 2)  # (B, T, H, W, 3) view for the augment
                aug = augs[name].train_batch(b)
                with amp:
                    out = model(aug.frames)  # (B, T, 3, H, W) in [0, 1]
                    loss = loss_fn(out, {"labels": aug.targets, "displacement": aug.displacement,
                                         "valid": aug.valid})
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                sync()
                if step >= warmup:
                    wait += t1 - t0
                    total += time.perf_counter() - t0
            del batches
            res = {"clips_per_s": steps * batch / total, "stall_fraction": wait / total}
            log(f"train {name}: {res['clips_per_s']:.2f} clips/s, stall {res['stall_fraction']:.2f}")
            return res

        def loader_block(name: str, epoch: int) -> float:
            batches = loader(name, epoch)
            next(batches)  # worker start-up and the first batch are not counted
            t0 = time.perf_counter()
            for _ in range(loader_batches):
                next(batches)
            rate = loader_batches * batch / (time.perf_counter() - t0)
            del batches
            log(f"loader {name}: {rate:.2f} clips/s")
            return rate

        if args.compare_threads:
            return _compare_threads(args, train_block, repeats, device, precision, backbone, module,
                                    dict(height=height, clip_len=clip_len, batch_size=batch, steps_per_block=steps,
                                         warmup_steps=warmup, num_videos=num_videos, video_s=seconds))
        names = list(datasets)
        train_res: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        loader_res: dict[str, list[float]] = {n: [] for n in names}
        for r in range(repeats):
            order = names[r % 3:] + names[: r % 3]
            for name in order:
                loader_res[name].append(loader_block(name, epoch=100 + r))
            for name in order:
                train_res[name].append(train_block(name, epoch=r))

    fig: dict[str, dict[str, float]] = {}
    for n in names:
        fig[n] = {
            "clips_per_s": r3(median([x["clips_per_s"] for x in train_res[n]])),
            "stall_fraction": r3(median([x["stall_fraction"] for x in train_res[n]])),
            "loader_clips_per_s": r3(median(loader_res[n])),
            "disk_bytes": disk[n],
        }
    speedup = fig["prepared"]["clips_per_s"] / fig["jpeg"]["clips_per_s"]
    loader_speedup = fig["prepared"]["loader_clips_per_s"] / fig["jpeg"]["loader_clips_per_s"]
    bytes_ratio = disk["prepared"] / disk["jpeg"]
    emit("train", args, {
        "device": str(device), "precision": precision, "model": f"{backbone}_{module}+gru",
        "loop": "lean (ClipDataset/make_loader/DeviceAugment/SpottingLoss/AdamW), not train()",
        "num_videos": num_videos, "video_s": seconds, "source_size": [src_w, src_h], "raw_gop": args.raw_gop,
        "height": height, "clip_len": clip_len, "batch_size": batch, "workers": args.workers, "mixup": False,
        "steps_per_block": steps, "warmup_steps": warmup, "repeats": repeats,
        "prepare_s": {"prepared": r3(prep_s), "jpeg": r3(jpeg_s)},
        "pipelines": fig,
        "ratio_prepared_over_jpeg_clips_per_s": r3(speedup),
        "ratio_prepared_over_jpeg_loader_clips_per_s": r3(loader_speedup),
        "ratio_prepared_over_jpeg_bytes": r3(bytes_ratio),
        "target_speedup": TARGET_SPEEDUP, "target_bytes_ratio": TARGET_BYTES,
        "meets_speedup": speedup >= TARGET_SPEEDUP, "meets_loader_speedup": loader_speedup >= TARGET_SPEEDUP,
        "meets_bytes": bytes_ratio <= TARGET_BYTES,
    })
    return 0


THREAD_CONFIGS = {"1_thread_1_worker": (1, 1), "2_threads_in_process": (2, 0)}  # (torch threads, workers)


def _compare_threads(args, train_block, repeats, device, precision, backbone, module, sizes) -> int:
    """Alternate the two thread/worker configurations per pipeline; medians of clips/s and stall."""
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    cases = [(p, c) for p in ("prepared", "raw") for c in THREAD_CONFIGS]
    for r in range(repeats):
        order = cases[r % len(cases):] + cases[: r % len(cases)]
        for pipeline, config in order:
            threads, workers = THREAD_CONFIGS[config]
            torch.set_num_threads(threads)
            log(f"{pipeline}, {config}")
            res = train_block(pipeline, epoch=r, workers=workers)
            results.setdefault(pipeline, {}).setdefault(config, []).append(res)
    fig: dict[str, dict[str, Any]] = {}
    for pipeline, by_config in results.items():
        fig[pipeline] = {c: {"clips_per_s": r3(median([x["clips_per_s"] for x in v])),
                             "stall_fraction": r3(median([x["stall_fraction"] for x in v]))}
                         for c, v in by_config.items()}
        fig[pipeline]["ratio_inprocess_over_worker"] = r3(
            fig[pipeline]["2_threads_in_process"]["clips_per_s"] / fig[pipeline]["1_thread_1_worker"]["clips_per_s"])
    emit("train_threads", args, {"device": str(device), "precision": precision, "model": f"{backbone}_{module}+gru",
                                 **sizes, "repeats": repeats, "pipelines": fig})
    return 0


if __name__ == "__main__":
    sys.exit(main())
