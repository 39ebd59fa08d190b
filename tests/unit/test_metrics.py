import io
import random
import sys

import numpy as np
import pytest

from cdc_support.checks.lag import LagStats, lag_plot_png, lag_samples, percentile
from cdc_support.events import ChangeEvent

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 1000])
def test_percentiles_match_numpy_linear(n):
    rng = random.Random(n)
    samples = [rng.expovariate(5) for _ in range(n)]
    stats = LagStats.from_samples(samples)
    for q, value in ((50, stats.p50), (95, stats.p95), (99, stats.p99)):
        assert value == pytest.approx(float(np.percentile(samples, q)), rel=1e-12, abs=1e-12)
    assert stats.max == max(samples)
    assert stats.mean == pytest.approx(float(np.mean(samples)))
    assert stats.count == n


def test_known_values():
    stats = LagStats.from_samples([4, 1, 3, 2])
    assert stats.p50 == 2.5
    assert stats.p95 == pytest.approx(3.85)
    assert stats.max == 4
    assert stats.mean == 2.5


def test_empty_samples_raise_a_clear_error():
    with pytest.raises(ValueError, match="no lag samples"):
        LagStats.from_samples([])


def test_percentile_bounds():
    assert percentile([1.0, 2.0], 0) == 1.0
    assert percentile([1.0, 2.0], 100) == 2.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summary_and_dict():
    stats = LagStats.from_samples([0.1, 0.2, 0.3])
    assert stats.summary() == "n=3 p50=0.200s p95=0.290s p99=0.298s max=0.300s mean=0.200s"
    assert stats.as_dict() == {
        "count": 3,
        "p50": pytest.approx(0.2),
        "p95": pytest.approx(0.29),
        "p99": pytest.approx(0.298),
        "max": 0.3,
        "mean": pytest.approx(0.2),
    }


def _ev(commit_ts, observed_ts):
    return ChangeEvent("c", (1,), None, {"id": 1}, {}, commit_ts, observed_ts)


def test_lag_samples_skip_events_without_timestamps_and_keep_order():
    events = [_ev(1.0, 1.5), _ev(None, 2.0), _ev(2.0, None), _ev(3.0, 2.9), _ev(4.0, 4.25)]
    assert lag_samples(events) == pytest.approx([0.5, -0.1, 0.25])


def test_lag_plot_png_is_a_png_and_leaves_global_state_alone():
    import matplotlib

    backend = matplotlib.get_backend()
    rng = random.Random(1)
    png = lag_plot_png(
        {
            "debezium": [rng.expovariate(8) for _ in range(500)],
            "polling": [rng.uniform(0.5, 1.5) for _ in range(50)],
        },
        title="lag: PostgreSQL → Kafka",
        limit_seconds=1.0,
    )
    assert png.startswith(PNG_SIGNATURE)
    assert matplotlib.get_backend() == backend
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or not pyplot.get_fignums()  # no figure left in pyplot's registry
    import matplotlib.image

    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    height, width = image.shape[:2]
    assert (width, height) == (1100, 450)


def test_lag_plot_png_with_empty_series():
    png = lag_plot_png({"nothing": []}, title="empty")
    assert png.startswith(PNG_SIGNATURE)


def test_lag_plot_png_single_sample():
    assert lag_plot_png({"one": [0.2]}, title="one", limit_seconds=0.5).startswith(PNG_SIGNATURE)


def test_slope_is_the_least_squares_trend_per_step() -> None:
    from cdc_support.checks.lag import slope

    assert slope([]) == 0.0 and slope([3.0]) == 0.0
    assert slope([1.0, 2.0, 3.0, 4.0]) == pytest.approx(1.0)
    assert slope([5.0, 5.0, 5.0]) == pytest.approx(0.0)
    assert slope([0.0, 2.0, 1.0, 3.0]) == pytest.approx(0.8)
