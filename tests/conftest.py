from __future__ import annotations

import pytest

from engine.data import ImageData, load_fashion_mnist


@pytest.fixture(scope="session")
def fashion() -> ImageData:
    """The real Fashion-MNIST (Debian's package in CI), loaded once per session."""
    return load_fashion_mnist(download=False)


@pytest.fixture(scope="session")
def small(fashion: ImageData) -> ImageData:
    """2,000 train and 500 test images of the real set: enough to learn, quick to train."""
    return fashion.subset(2000, 500, seed=0)
