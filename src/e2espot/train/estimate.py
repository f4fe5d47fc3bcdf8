"""Memory per training step and time per epoch, estimated before training from one short probe.

The probe builds the model (random weights, nothing downloaded), runs one forward + backward on a
``(1, probe_frames, 3, h, w)`` clip under the run's precision, at the training frame size or, above
``PROBE_MAX_HEIGHT``, at that height with the same aspect (both figures are then scaled by the pixel
ratio: the CNN's activations and time grow with the pixels; the small temporal head's are overestimated).
AdaSpot resizes every input to its own two resolutions, so its probe is not scaled.
It records

* every tensor autograd saves for the backward pass (``torch.autograd.graph.saved_tensors_hooks``,
  counted once per storage), for the probe clip and for one half as long: the difference per frame is
  the activation memory, which grows linearly with clips x frames (what does not grow with the frames,
  such as autocast's low-precision copies of the weights, cancels out);
* the wall time of a repeated forward + backward of the probe clip (the first one at that shape is the
  warm-up): seconds per frame of a training step.

A step then needs ``fixed + OVERHEAD x activation_per_frame x micro_batch x clip_len`` bytes, where
``fixed`` holds the weights, their gradients and AdamW's two moments (plus SAM's copy of the weights)
and the uint8 input batch. ``OVERHEAD`` covers the backward's transient buffers and the allocator;
it is an estimate, not a measurement of the whole run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from e2espot.config import ModelConfig

OVERHEAD = 1.5  # backward transients + allocator slack over the saved activations
PROBE_FRAMES = 4
PROBE_MAX_HEIGHT = 112  # probe larger frames at this height and scale by the pixel ratio


@dataclass(frozen=True)
class StepEstimate:
    """What one probe measured; ``step_bytes`` and ``epoch_seconds`` scale it to a run's sizes."""

    height: int
    width: int
    activation_bytes_per_frame: float  # saved for backward, per frame of one clip
    parameter_bytes: int  # weights (fp32)
    seconds_per_frame: float  # forward + backward, per frame of one clip, on the probe's device
    seconds_per_call: float = 0.0  # forward + backward cost that does not grow with the frames
    optimizer: str = "adamw"

    def step_bytes(self, micro_batch: int, clip_len: int) -> int:
        copies = 4 + (1 if self.optimizer in ("sam", "asam") else 0)  # weight, grad, 2 AdamW moments (+ SAM)
        frames = micro_batch * clip_len
        inputs = frames * self.height * self.width * 3  # the uint8 batch
        return int(copies * self.parameter_bytes + inputs + OVERHEAD * self.activation_bytes_per_frame * frames)

    def step_seconds(self, batch_size: int, clip_len: int, acc_grad: int = 1) -> float:
        passes = 2 if self.optimizer in ("sam", "asam") else 1
        return passes * (self.seconds_per_frame * batch_size * clip_len + self.seconds_per_call * acc_grad)

    def epoch_seconds(self, epoch_clips: int, clip_len: int, batch_size: int = 1, acc_grad: int = 1) -> float:
        steps = max(1, epoch_clips // batch_size)
        return steps * self.step_seconds(batch_size, clip_len, acc_grad)


def probe_step(model_cfg: ModelConfig, height: int, width: int, *, device, precision: str,
               optimizer: str = "adamw", probe_frames: int = PROBE_FRAMES) -> StepEstimate:
    """One forward + backward of a ``probe_frames``-frame clip at ``height`` x ``width`` (see the module)."""
    import torch

    from e2espot.data.modality import get_modality
    from e2espot.device import autocast
    from e2espot.models import create_spotter

    frames = max(1, min(probe_frames, model_cfg.clip_len))
    # object-track fusion left out: a few linear layers per frame, negligible next to the backbone
    model = create_spotter(replace(model_cfg, pretrained=False, track_fusion=None)).to(device).train()
    probe_h, probe_w = height, width
    # AdaSpot resizes any input to its own high-res / low-res sizes (models.adaspot.AdaSpot.inputs): its cost
    # does not grow with the input's pixels, so a small probe input is measured at full cost (ratio 1)
    resizes_itself = model_cfg.head == "adaspot"
    if height > PROBE_MAX_HEIGHT:
        probe_h = PROBE_MAX_HEIGHT
        probe_w = max(2, 2 * round(width * probe_h / height / 2))
    pixel_ratio = 1.0 if resizes_itself else (height * width) / (probe_h * probe_w)
    amp = autocast(device, precision)

    def run(num_frames: int) -> int:
        """Forward + backward of a (1, num_frames, C, h, w) clip; returns the bytes saved for backward."""
        seen: dict[tuple[int, int], int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            seen[(storage.data_ptr(), t.device.index or 0)] = storage.nbytes()
            return t

        chans = get_modality(model_cfg.modality).num_channels  # 3 rgb, 1 gray, 2 flow
        x = torch.rand(1, num_frames, chans, probe_h, probe_w, device=device)  # (B, T, C, h, w) in [0, 1]
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            with amp:
                out = model(x)
                loss = out.logits.float().logsumexp(-1).mean()
            loss.backward()
        model.zero_grad(set_to_none=True)
        return sum(seen.values())

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    half = max(1, frames // 2)
    def timed(num_frames: int) -> float:
        sync()
        t0 = time.perf_counter()
        run(num_frames)
        sync()
        return time.perf_counter() - t0

    saved_half = run(half)  # the first pass at each shape is also its warm-up (kernel selection, buffers)
    saved_full = run(frames)
    t_half, t_full = timed(half), timed(frames)
    per_frame_s = (t_full - t_half) / (frames - half) if frames > half else t_full / frames
    if per_frame_s <= 0:  # timing noise on a busy machine: fall back to the whole pass per frame
        per_frame_s = t_full / frames
    per_call_s = max(0.0, t_full - per_frame_s * frames)
    per_frame = (saved_full - saved_half) / (frames - half) if frames > half else saved_full / frames
    params = sum(p.numel() * 4 for p in model.parameters())
    return StepEstimate(height=height, width=width, activation_bytes_per_frame=pixel_ratio * max(0.0, per_frame),
                        parameter_bytes=params, seconds_per_frame=pixel_ratio * per_frame_s,
                        seconds_per_call=per_call_s, optimizer=optimizer)


def available_bytes(device) -> int | None:
    """Memory a run may use: MemAvailable from /proc/meminfo on the CPU, free memory on a CUDA device;
    None when unknown."""
    if device.type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def format_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def format_seconds(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"
