"""The check the ``gpu``-marked tests share: one model trained alike on two backends agrees."""

from typing import Any

import numpy as np
import pytest


def assert_models_agree(
    cpu: Any, gpu: Any, cpu_stats: dict[str, Any], gpu_stats: dict[str, Any]
) -> None:
    """The last step's stats to rel 1e-9, and every weight of G and D to rtol 1e-8
    (float64: what differs is only the order of the additions inside the kernels)."""
    for key, value in cpu_stats.items():
        assert float(gpu_stats[key]) == pytest.approx(float(value), rel=1e-9), key
    for net in ("generator", "discriminator"):
        cpu_state = getattr(cpu, net).state_dict()
        for name, value in getattr(gpu, net).state_dict().items():
            np.testing.assert_allclose(value, cpu_state[name], rtol=1e-8, atol=1e-10, err_msg=name)
