"""Read one split (train/val/test) of a dataset: an E2E-Spot label directory, or a SoccerNet
root plus a splits file mapping split names to game folders."""

from __future__ import annotations

from pathlib import Path

from e2espot.data.labels import LabelSet
from e2espot.errors import ConfigError, LabelFormatError


def read_split(labels_path: Path, split: str, *, fmt: str | None = None, splits: Path | None = None,
               label_file: str = "Labels-ball.json", classes: list[str] | None = None) -> LabelSet:
    """Read one split of an E2E-Spot label dir, or of a SoccerNet root with a splits file."""
    from e2espot.data.formats import read_labels

    fmt = fmt or "spot"
    if fmt == "soccernet":
        games = soccernet_games(labels_path, split, splits)
        labels = read_labels(labels_path, "soccernet", label_file=label_file)
        keep = [v for v in labels if v.extra.get("game", v.video) in games]
        missing = sorted(set(games) - {v.extra.get("game", v.video) for v in keep})
        if missing:
            raise LabelFormatError(f"{labels_path}: split '{split}' lists games with no {label_file}: {missing[:5]}")
        out = LabelSet(classes or list(labels.classes), keep)
    else:
        from e2espot.data.splits import split_candidates

        split_file = labels_path / f"{split}.json" if labels_path.is_dir() else labels_path
        if labels_path.is_dir() and not split_file.exists():  # "valid.json" for val, as the SoccerNet devkit
            split_file = next((labels_path / f"{n}.json" for n in split_candidates(split)
                               if (labels_path / f"{n}.json").exists()), split_file)
        if not split_file.exists():
            raise LabelFormatError(f"{labels_path}: no {split}.json; expected an E2E-Spot label directory")
        out = read_labels(split_file, fmt)
        if classes:
            out = LabelSet(list(classes), out.videos)
    return out


def soccernet_games(root: Path, split: str, splits: Path | None) -> list[str]:
    """Game folders of ``split`` from a splits JSON, or T-DEED split lists (default ``<root>/splits.json``).

    See ``splits.read_split_games``; a missing split raises LabelFormatError (training goes on without val).
    """
    if splits is None:
        guess = root / "splits.json"
        if guess.exists():
            splits = guess
        else:
            raise ConfigError(
                f"{root}: SoccerNet labels need --splits FILE.json mapping train/val/test to game folders "
                "(e.g. from SoccerNet.utils.getListGames)"
            )
    from e2espot.data.splits import read_split_games

    return read_split_games(splits, split)
