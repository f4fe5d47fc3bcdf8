"""Every registered key is reachable from the CLI: choices and help come from the registries (issue 13)."""

from __future__ import annotations

import argparse

import pytest

from e2espot.cli import build_parser, main


@pytest.fixture(scope="module")
def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _action(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


def test_train_choices_are_the_registries(commands):
    from e2espot.models import list_backbones, list_heads, list_temporal_modules
    from e2espot.models.losses import CLASSIFICATION_LOSSES
    from e2espot.train.optim import OPTIMIZERS

    train = commands["train"]
    assert list(_action(train, "--temporal-arch").choices) == list_heads()
    assert list(_action(train, "--loss").choices) == CLASSIFICATION_LOSSES.names() == ["bce", "ce", "focal"]
    assert list(_action(train, "--optimizer").choices) == OPTIMIZERS.names() == ["adamw", "asam", "sam"]
    arch_help = _action(train, "--feature-arch").help
    for key in list_backbones() + list_temporal_modules():
        assert key in arch_help, key
    assert "rn18" in list_backbones() and "astrm" in list_temporal_modules()


def test_train_help_lists_rn18_and_astrm(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "rn18" in out and "astrm" in out and "edsgp" in out


def test_evaluate_export_convert_choices_are_the_registries(commands):
    from e2espot.data.formats import list_formats
    from e2espot.eval.registry import METRICS
    from e2espot.export.targets import EXPORT_TARGETS

    assert list(_action(commands["evaluate"], "--metric").choices) == METRICS.names() == ["e2e", "soccernet", "team"]
    assert list(_action(commands["evaluate"], "--labels-format").choices) == list_formats()
    assert list(_action(commands["export"], "--to").choices) == EXPORT_TARGETS.names()
    assert set(EXPORT_TARGETS.names()) == {"csv", "soccernet", "chapters", "highlights"}
    convert_to = _action(commands["convert"], "--to")
    for key in list_formats():
        assert key in (convert_to.help or "") or key in (convert_to.choices or ()), key


def test_registry_factories_resolve():
    from e2espot.eval.registry import METRICS
    from e2espot.export.targets import EXPORT_TARGETS

    assert all(callable(METRICS.get(n).factory()) for n in METRICS.names())
    for n in EXPORT_TARGETS.names():
        got = EXPORT_TARGETS.get(n).factory()
        assert all(callable(f) for f in (got if isinstance(got, tuple) else (got,)))


def test_nms_choices_are_the_config_kinds(commands):
    from e2espot.config import NMS_KINDS
    from e2espot.infer.predict import DEFAULT_NMS_WINDOW

    for name in ("predict", "test"):
        assert tuple(_action(commands[name], "--nms").choices) == NMS_KINDS
    assert tuple(DEFAULT_NMS_WINDOW) == NMS_KINDS
