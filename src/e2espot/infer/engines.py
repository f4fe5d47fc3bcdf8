"""Inference engines: the PyTorch model (eager or ``torch.compile``), or an ONNX export run by ONNX Runtime.

Every engine is a callable ``engine(x) -> SpotterOutput`` with ``x`` (B, T, 3, H, W) float32 in [0, 1],
so ``predict_scores`` / ``predict_file`` stream, window and post-process the same way whatever runs
the network, and give identical events.

* ``export_onnx(model, cfg, path)`` writes the whole Spotter (normalisation, backbone with its temporal
  modules, head, displacement head) for one clip length T, with a dynamic batch size and frame size. The
  resolved ``RunConfig`` is stored in the ONNX metadata, so ``model.onnx`` alone is enough to predict.
  The export is checked against PyTorch on a random clip and refused when any output differs by more
  than ``atol`` (default 1e-4): a wrong model file is never written.
* Exporter: TorchScript-based ``torch.onnx.export(dynamo=False)`` first (fast), then the dynamo exporter
  for modules the former cannot trace (the ``edsgp`` head's adaptive pooling, ``asformer``'s unfold).
  Temporal shifts are out of place (``torch.cat`` of ``narrow`` slices, see ``models.temporal.shift_time``),
  so TSM/GSM/GSF export without the in-place slicing that breaks the reference TSM export
  (mit-han-lab/temporal-shift-module #103, #189).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from e2espot.config import ENGINES, RunConfig
from e2espot.errors import CheckpointError, ConfigError

METADATA_KEY = "e2espot.run_config"
DEFAULT_OPSET = 18
EXPORT_ATOL = 1e-4


@dataclass(frozen=True)
class OnnxExport:
    """What ``export_onnx`` wrote and how close it is to PyTorch."""

    path: Path
    exporter: str  # "torchscript" or "dynamo"
    clip_len: int
    outputs: tuple[str, ...]  # "logits", then those of OPTIONAL_OUTPUTS the model has
    max_abs_diff: dict[str, float]  # per output, ONNX Runtime vs PyTorch fp32 on the check clip


OPTIONAL_OUTPUTS = ("displacement", "team", "extra_logits")  # SpotterOutput fields exported when present


class _ExportWrapper(nn.Module):
    """The Spotter with tensor outputs only (ONNX has no NamedTuple): logits, then the optional heads
    the model has, in ``OPTIONAL_OUTPUTS`` order."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, x: torch.Tensor):
        out = self.model(x)
        return tuple(getattr(out, name) for name in self.names)


def _output_names(model: nn.Module, x: torch.Tensor) -> tuple[str, ...]:
    """``logits`` plus every optional head this model answers with (probed on the check clip)."""
    with torch.inference_mode():
        out = model(x[:1])
    return ("logits", *(name for name in OPTIONAL_OUTPUTS if getattr(out, name, None) is not None))


def _frame_size(cfg: RunConfig, height: int | None, width: int | None) -> tuple[int, int]:
    """The (H, W) of the check clip: explicit values, else the run's crop, else its height and width."""
    if cfg.data.crop:
        default_h = default_w = cfg.data.crop
    else:
        default_h = cfg.data.height
        default_w = cfg.data.width or int(round(cfg.data.height * 16 / 9 / 2)) * 2
    return int(height or default_h), int(width or default_w)


def _session(path: str | Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _exporter_order(head: str) -> tuple[str, str]:
    """TorchScript first unless the head's registry entry says it needs the dynamo exporter."""
    from e2espot.models import heads  # noqa: F401  (importing it fills HEADS)
    from e2espot.models.registry import HEADS

    first = HEADS.get(head).meta.get("onnx_exporter", "torchscript")
    return (first, "dynamo") if first == "torchscript" else (first, "torchscript")


def _export_once(wrapper: nn.Module, x: torch.Tensor, path: Path, names: tuple[str, ...], opset: int,
                 dynamo: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dims = {0: torch.export.Dim("batch", min=1, max=1024),
                    3: torch.export.Dim("height", min=16, max=4096),
                    4: torch.export.Dim("width", min=16, max=4096)}
            program = torch.onnx.export(
                wrapper, (x,), dynamo=True, opset_version=max(opset, 18), input_names=["frames"],
                output_names=list(names), dynamic_shapes=(dims,), verbose=False,
            )
            program.save(str(path))
        else:
            axes = {"frames": {0: "batch", 3: "height", 4: "width"}}
            axes.update({name: {0: "batch"} for name in names})
            torch.onnx.export(
                wrapper, (x,), str(path), dynamo=False, opset_version=min(opset, 20),
                input_names=["frames"], output_names=list(names), dynamic_axes=axes,
            )


def check_onnx_supported(cfg: RunConfig, what: str) -> None:
    """ConfigError naming the fix when the run has no ONNX path: clip classifiers (``--task classify``) and
    models that fuse object tracks (a second input per frame) are exported by neither exporter."""
    why = None
    if cfg.task == "classify":
        why = "a clip classifier (train --task classify); score it with: e2espot test RUN -s SPLIT"
    elif getattr(cfg.model, "track_fusion", None):
        why = (f"a model that fuses object tracks (--track-fusion {cfg.model.track_fusion}: a second input "
               "per frame); run it with the torch engine (drop --engine onnxruntime)")
    if why is not None:
        raise ConfigError(f"{what}: ONNX is not supported for {why}")


def export_onnx(
    model: nn.Module,
    cfg: RunConfig,
    path: str | Path,
    *,
    clip_len: int | None = None,
    height: int | None = None,
    width: int | None = None,
    opset: int = DEFAULT_OPSET,
    atol: float = EXPORT_ATOL,
    seed: int = 0,
) -> OnnxExport:
    """Export ``model`` (a Spotter in eval mode, fp32) to ONNX at ``path``, checked against PyTorch.

    ``clip_len`` T defaults to ``cfg.data.clip_len``; the batch dimension is dynamic (and, with the
    TorchScript exporter, frame height and width too). The check runs a random clip (2, T, C, H, W) (C of the run's modality),
    H/W from the run's crop or height (``height``/``width`` override), through both and compares every
    output; a difference above ``atol`` raises ``CheckpointError`` and nothing is written.
    Returns an :class:`OnnxExport` with the exporter used and the measured differences.
    """
    import onnx

    check_onnx_supported(cfg, "export-model")
    clip_len = int(clip_len or cfg.data.clip_len)
    if clip_len < 1:
        raise ConfigError(f"clip_len {clip_len} must be >= 1")
    path = Path(path)
    model = model.float().eval()
    h, w = _frame_size(cfg, height, width)
    generator = torch.Generator().manual_seed(seed)
    from e2espot.data.modality import get_modality

    chans = get_modality(cfg.model.modality).num_channels  # 3 rgb, 1 gray, 2 flow
    x = torch.rand(2, clip_len, chans, h, w, generator=generator)  # (B, T, C, H, W)
    names = _output_names(model, x)
    wrapper = _ExportWrapper(model, names).eval()
    with torch.inference_mode():
        expected = [t.float().numpy() for t in wrapper(x)]

    errors = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".onnx-") as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        for exporter in _exporter_order(cfg.model.head):
            try:
                _export_once(wrapper, x, tmp_path, names, opset, dynamo=exporter == "dynamo")
            except Exception as exc:  # each exporter fails on different ops; try the next one
                errors.append(f"{exporter}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                continue
            break
        else:
            raise CheckpointError(
                f"cannot export {cfg.model.backbone}+{cfg.model.temporal_module or 'none'}+{cfg.model.head} "
                f"to ONNX: {'; '.join(errors)}"
            )
        session = _session(tmp_path)
        got = session.run(None, {"frames": x.numpy()})
        diffs = {name: float(np.abs(g - e).max()) for name, g, e in zip(names, got, expected, strict=True)}
        worst = max(diffs, key=diffs.get)
        if not diffs[worst] <= atol:
            raise CheckpointError(
                f"ONNX export of {cfg.model.backbone}+{cfg.model.temporal_module or 'none'}+{cfg.model.head} "
                f"differs from PyTorch: max |diff| of '{worst}' = {diffs[worst]:.3g} > atol {atol:g}; "
                f"nothing written to {path.name}"
            )
        proto = onnx.load(str(tmp_path), load_external_data=True)
        run_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, clip_len=clip_len))
        meta = {METADATA_KEY: json.dumps(run_cfg.to_dict()), "e2espot.exporter": exporter,
                "e2espot.outputs": ",".join(names)}
        del proto.metadata_props[:]
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp_path))
        os.replace(tmp_path, path)
    return OnnxExport(path, exporter, clip_len, names, diffs)


class OnnxSpotter:
    """An exported Spotter run by ONNX Runtime on the CPU; called like the PyTorch model.

    ``spotter(x)`` with ``x`` (B, T, 3, H, W) float in [0, 1] (torch tensor) returns a ``SpotterOutput``
    (``logits`` (B, T, K+1); ``displacement`` (B, T), ``team`` (B, T), ``extra_logits`` (B, T, K2+1) or
    None as the exported model has them; ``features`` is not exported: None).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: ONNX model not found; write one with 'e2espot export-model RUN_DIR'")
        try:
            self.session = _session(path, threads)
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise CheckpointError(
                f"{path}: no e2espot run config in its metadata; export it with 'e2espot export-model'"
            )
        self.config = RunConfig.from_dict(json.loads(meta[METADATA_KEY]))
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self.path = path

    def eval(self) -> OnnxSpotter:  # the PyTorch-model interface predict code may call
        return self

    def __call__(self, x: torch.Tensor):
        from e2espot.models.spotter import SpotterOutput

        frames = x.detach().float().contiguous().cpu().numpy()
        arrays = self.session.run(None, {"frames": frames})
        outputs = {name: torch.from_numpy(a) for name, a in zip(self.output_names, arrays, strict=True)}
        logits = outputs.pop("logits")
        return SpotterOutput(logits, [logits], features=None, **{n: outputs.get(n) for n in OPTIONAL_OUTPUTS})


def load_engine(
    model_path: str | Path,
    *,
    engine: str = "torch",
    device: str | torch.device = "cpu",
    checkpoint: str | Path = "best",
    compile: bool = False,
) -> tuple[Any, RunConfig]:
    """``(callable model, RunConfig)`` for ``predict_file`` / ``predict_scores``.

    ``model_path`` is a run directory or a ``.onnx`` file written by ``export-model``. A ``.onnx`` file
    implies ``engine="onnxruntime"``; with a run directory, that engine uses ``RUN_DIR/model.onnx``.
    ``compile=True`` wraps the PyTorch model in ``torch.compile`` (first windows are slower: compilation).
    """
    from e2espot.infer.predict import load_run

    model_path = Path(model_path)
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine '{engine}'; expected one of {', '.join(ENGINES)}")
    if model_path.suffix == ".onnx":
        engine = "onnxruntime"
    if engine == "onnxruntime":
        if compile:
            raise ConfigError("--compile applies to the torch engine only; drop it for onnxruntime")
        if torch.device(device).type != "cpu":
            raise ConfigError(f"the onnxruntime engine runs on the CPU; got --device {device}")
        onnx_path = model_path if model_path.suffix == ".onnx" else model_path / "model.onnx"
        if model_path.suffix != ".onnx" and (model_path / "config.json").is_file():
            check_onnx_supported(RunConfig.load(model_path / "config.json"), "--engine onnxruntime")
        if not onnx_path.is_file():
            raise CheckpointError(
                f"{onnx_path}: not found; write it first: e2espot export-model {model_path} -o {onnx_path}"
            )
        spotter = OnnxSpotter(onnx_path)
        return spotter, spotter.config
    model, cfg = load_run(model_path, device=device, checkpoint=checkpoint)
    if compile:
        model = torch.compile(model)
    return model, cfg


__all__ = ["ENGINES", "OnnxExport", "OnnxSpotter", "check_onnx_supported", "export_onnx", "load_engine"]
