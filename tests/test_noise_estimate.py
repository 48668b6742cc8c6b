"""The damage estimators' own percentile is NumPy's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from upres.kernels.noise_estimate import percentile


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_percentile_is_numpys_value_and_dtype(dtype: type) -> None:
    rng = np.random.default_rng(5)
    for _ in range(3000):
        n = int(rng.integers(1, 2500))
        values = (rng.random(n) * rng.uniform(0.1, 60)).astype(dtype)
        if rng.random() < 0.3:
            values = np.round(values)  # ties
        q = float(rng.choice([0.0, 5.0, 12.5, 25.0, 50.0, 95.0, 100.0]))
        want, got = np.percentile(values, q), percentile(values, q)
        assert got == want and np.asarray(got).dtype == np.asarray(want).dtype, (n, q)


def test_percentile_leaves_its_input_alone() -> None:
    values = np.array([3.0, 1.0, 2.0], np.float32)
    assert percentile(values, 50) == 2.0
    assert values.tolist() == [3.0, 1.0, 2.0]
