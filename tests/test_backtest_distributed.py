"""Backtest origins as Dask tasks: the same numbers as the serial run, failures per task."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from test_backtest_runner import _pipeline
from vekst.evaluate import BacktestConfig, backtest
from vekst.evaluate.distributed import backtest_distributed

METHODS = ("bayes", "naive5", "ccm5", "no_migration")


@pytest.fixture(scope="module")
def simulated(default_panel):
    """A small simulated panel (one labour-market region) with known structure."""
    from vekst.simulate import default_regions, simulate_panel

    regions = default_regions(default_panel, 1)
    panel, _ = simulate_panel(seed=4, regions=regions, base=default_panel, years=range(2005, 2014))
    return panel


def test_distributed_and_serial_backtests_agree_exactly(
    simulated, dask_client, monkeypatch, tmp_path
):
    _pipeline(monkeypatch)  # in-process workers see the stand-in fit
    config = BacktestConfig(
        origins=(2009, 2010, 2011, 2012), horizon=2, methods=METHODS, n_draws=20
    )
    serial = backtest(simulated, config)
    messages: list[str] = []
    parallel = backtest_distributed(
        simulated, config, client=dask_client, store=tmp_path, log=messages.append
    )
    pd.testing.assert_frame_equal(parallel.scores, serial.scores)
    pd.testing.assert_frame_equal(parallel.table(), serial.table())
    for key, forecast in serial.forecasts.items():
        np.testing.assert_array_equal(parallel.forecasts[key].values, forecast.values)
    assert sum("origins)" in m for m in messages) == 4  # progress: k/4 origins done
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        f"origin_{o}.json" for o in config.origins
    ]


def test_a_failing_task_is_reported_and_the_others_are_kept(simulated, dask_client, monkeypatch):
    _pipeline(monkeypatch)
    # the panel's last stock is 2014: origin 2014 has nothing to score and its task raises
    config = BacktestConfig(origins=(2012, 2014), horizon=1, methods=("naive5",))
    result = backtest_distributed(simulated, config, client=dask_client)
    assert result.settings["failed_origins"] == [2014]
    assert "no observed stock" in result.notes[2014]["task_failed"]
    assert set(result.scores["origin"]) == {2012}
