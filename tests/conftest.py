import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download weights in tests

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def spot_fixtures() -> Path:
    """The real E2E-Spot label files in ../shared/fixtures (skip when absent)."""
    root = SHARED_FIXTURES / "spot-labels"
    if not root.is_dir():
        pytest.skip(f"real label fixtures not found at {root}")
    return root
