"""Convert a published model (E2E-Spot folder, OpenSportsLib checkpoint, hf://OWNER/REPO[/SUBDIR][@REV])
into an e2espot run directory (config.json + best.pt + provenance.json), so predict, test, render,
export and the web app use it like a model trained here. The weights load strictly and the forward
pass equals the reference code's (see README, "Use a published model"). The frame rate, frame size
and crop come from the reference dataset the model names; --fps/--height/--width/--crop override them.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from e2espot.models.published import list_kinds

    parser.add_argument("source", metavar="SRC",
                        help="published model: a folder as distributed, a checkpoint file, or hf://OWNER/REPO[/SUBDIR][@REV]")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="RUN_DIR", help="run directory to write")
    parser.add_argument("--kind", choices=list_kinds(), default=None, help="reference kind (default: detected)")
    parser.add_argument("--checkpoint", default=None,
                        help="which checkpoint: an epoch number, a file name, 'last' (default: the reference's "
                             "own choice, e.g. the best epoch of loss.json, else the highest checkpoint_NNN.pt)")
    parser.add_argument("--classes", default=None,
                        help="class names, comma-separated or a class.txt file (default: class.txt beside the "
                             "model, its config, or the reference dataset's published list)")
    parser.add_argument("--fps", type=float, default=None, help="override the frame rate the model reads")
    parser.add_argument("--height", type=int, default=None, help="override the frame height")
    parser.add_argument("--width", type=int, default=None, help="override the frame width (default: keep aspect)")
    parser.add_argument("--crop", type=int, default=None, help="override the centre crop (0 = none)")
    parser.add_argument("--force", action="store_true", help="overwrite RUN_DIR if it already holds a run")


def parse_classes(text: str | None) -> list[str] | None:
    """``a,b,c`` or the path of a one-name-per-line file."""
    from e2espot.errors import ConfigError
    from e2espot.models.published._common import read_class_file

    if text is None:
        return None
    if Path(text).is_file():
        return read_class_file(Path(text))
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ConfigError(f"--classes {text!r}: empty class name; give names separated by commas or a class.txt")
    return names


def apply_overrides(imported, *, fps=None, height=None, width=None, crop=None):
    """``imported`` with its DataConfig overridden where given (recorded in provenance['overrides'])."""
    import dataclasses

    from e2espot.errors import ConfigError

    changes = {}
    if fps is not None:
        if not fps > 0:
            raise ConfigError(f"--fps {fps} must be > 0")
        changes["fps"] = float(fps)
    for name, value in (("height", height), ("width", width)):
        if value is not None:
            if value < 1:
                raise ConfigError(f"--{name} {value} must be >= 1")
            changes[name] = int(value)
    if crop is not None:
        if crop < 0:
            raise ConfigError(f"--crop {crop} must be >= 0 (0 = no crop)")
        changes["crop"] = int(crop) or None
    if not changes:
        return imported
    cfg = imported.run_config
    run_config = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **changes))
    provenance = {**imported.provenance, "overrides": changes}
    return dataclasses.replace(imported, run_config=run_config, provenance=provenance)


def run(args: argparse.Namespace) -> int:
    from e2espot.errors import ConfigError
    from e2espot.models.published import import_reference, write_run
    from e2espot.models.published.hub import resolve_model_ref

    out = Path(args.out)
    if (out / "config.json").exists() and not args.force:
        raise ConfigError(f"{out} already holds a run (config.json); choose another -o or pass --force")
    source = resolve_model_ref(args.source)
    imported = import_reference(source, kind=args.kind, checkpoint=args.checkpoint,
                                classes=parse_classes(args.classes))
    imported = apply_overrides(imported, fps=args.fps, height=args.height, width=args.width, crop=args.crop)
    if str(args.source) != str(source):
        imported.provenance["hub_ref"] = str(args.source)
    write_run(imported, out)
    cfg, prov = imported.run_config, imported.provenance
    data = cfg.data
    size = f"{data.width}x{data.height}" if data.width else f"{data.height} px high (aspect kept)"
    print(f"imported {prov['kind']} model from {source}")
    print(f"  checkpoint: {prov['checkpoint']} ({prov.get('checkpoint_choice', 'as given')})")
    print(f"  model: {cfg.model.backbone}{'+' + cfg.model.temporal_module if cfg.model.temporal_module else ''}"
          f"+{cfg.model.head}, {cfg.model.modality}, clip_len {cfg.model.clip_len}")
    print(f"  classes ({len(cfg.classes)}): {', '.join(cfg.classes)}")
    print(f"  input: {data.fps if data.fps else 'native'} fps, {size}, crop {data.crop or 'none'} "
          f"({prov.get('dataset')})")
    print(f"  parameters: {imported.num_parameters:,}")
    print(f"wrote {out} (config.json, best.pt, provenance.json)")
    return 0
