"""Models: registries of backbones, temporal modules and heads, the Spotter, and the losses."""

from e2espot.models import backbones, heads, temporal, x3d  # noqa: F401  (fill the registries)
from e2espot.models.backbones import Backbone, create_backbone
from e2espot.models.heads import Head, create_head
from e2espot.models.registry import (
    list_backbones,
    list_heads,
    list_temporal_modules,
    parse_arch,
    register_backbone,
    register_head,
    register_temporal_module,
)
from e2espot.models.spotter import Spotter, SpotterOutput, create_spotter
from e2espot.models.temporal import create_temporal_module

__all__ = [
    "Backbone",
    "Head",
    "Spotter",
    "SpotterOutput",
    "create_backbone",
    "create_head",
    "create_spotter",
    "create_temporal_module",
    "list_backbones",
    "list_heads",
    "list_temporal_modules",
    "parse_arch",
    "register_backbone",
    "register_head",
    "register_temporal_module",
]
