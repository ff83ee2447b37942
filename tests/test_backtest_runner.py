"""The backtest runner: one task per origin, seeds by key, failures kept apart, resuming."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vekst.evaluate import BacktestConfig, backtest, origin_seed, run_origin
from vekst.evaluate.store import OriginStore

METHODS = ("bayes", "naive5", "no_migration")


@pytest.fixture(scope="module")
def small_panel(default_panel):
    codes = ["4001", "4003", "4012", "4014", "4020", "4026"]
    return default_panel.sel(municipality=codes, year=slice(2005, 2016)).copy(deep=True)


def _pipeline(
    monkeypatch, converged=lambda origin, config: True, calls=None, sampler_seen=None
):
    """A stand-in fit whose projection draws depend on the seed it is given;
    ``converged(origin, sampler_config)`` decides its gate."""

    def fit_panel(panel, spec=None, config=None, *, employment_rate=None):
        origin = int(panel.attrs["backtest_origin"])
        ok = converged(origin, config)
        if calls is not None:
            calls.append((origin, config.seed))
        if sampler_seen is not None:
            sampler_seen.append((origin, config))
        problems = [] if ok else ["max R-hat 1.2"]
        diagnostics = SimpleNamespace(
            converged=ok,
            divergences=0,
            problems=tuple(problems),
            as_dict=lambda: {"converged": ok, "problems": problems},
        )
        return SimpleNamespace(idata=None, diagnostics=diagnostics)

    def project_fit(fit, panel, *, allow_unconverged=False, n_draws=250, seed=0, **options):
        from vekst.projection import make_test_draws, project

        draws = make_test_draws(panel, n_draws, seed, covariates=[], mort_dev=None)
        return project(panel, draws, seed=seed, **options)

    monkeypatch.setattr("vekst.workflow.fit_panel", fit_panel)
    monkeypatch.setattr("vekst.workflow.project_fit", project_fit)


def test_each_origin_is_seeded_by_its_key_so_it_runs_alone_the_same(small_panel, monkeypatch):
    calls: list = []
    _pipeline(monkeypatch, calls=calls)
    both = backtest(
        small_panel, BacktestConfig(origins=(2012, 2014), horizon=2, methods=METHODS, n_draws=20)
    )
    alone = run_origin(
        small_panel, 2014, BacktestConfig(origins=(2014,), horizon=2, methods=METHODS, n_draws=20)
    )
    np.testing.assert_array_equal(
        both.forecasts[(2014, "bayes")].values, alone.forecasts["bayes"].values
    )
    assert {seed for _, seed in calls} == {origin_seed(20240101, 2012), origin_seed(20240101, 2014)}
    assert origin_seed(20240101, 2012) != origin_seed(20240101, 2014)
    assert origin_seed(1, 2012) != origin_seed(2, 2012)


def test_a_failed_gate_is_recorded_per_origin_and_in_the_table(small_panel, monkeypatch):
    _pipeline(monkeypatch, converged=lambda origin, config: origin != 2014)
    config = BacktestConfig(origins=(2012, 2014), horizon=1, methods=METHODS, n_draws=20)
    result = backtest(small_panel, config)
    assert result.converged() == {2012: True, 2014: False}
    table = result.table()
    bayes = table[table["method"] == "bayes"].groupby("origin")["converged"].unique()
    assert bayes.loc[2012].tolist() == [True] and bayes.loc[2014].tolist() == [False]
    assert table.loc[table["method"] != "bayes", "converged"].isna().all()
    pooled = result.table(pooled=True)
    assert (pooled.loc[pooled["method"] == "bayes", "converged"] == 0.5).all()
    assert result.notes[2014]["diagnostics"]["problems"] == ["max R-hat 1.2"]


def test_an_unconverged_origin_is_fitted_again_and_the_second_fit_is_used(
    small_panel, monkeypatch
):
    seen: list = []
    # Origin 2014 passes the gate only with more draws than the first fit had.
    _pipeline(
        monkeypatch,
        converged=lambda origin, config: origin != 2014 or config.draws > 1500,
        sampler_seen=seen,
    )
    config = BacktestConfig(origins=(2012, 2014), horizon=1, methods=METHODS, n_draws=20)
    result = backtest(small_panel, config)
    assert result.converged() == {2012: True, 2014: True}
    fits_2014 = [sampler for origin, sampler in seen if origin == 2014]
    assert [s.draws for s in fits_2014] == [1500, 3000]
    assert fits_2014[0].seed == fits_2014[1].seed
    assert [origin for origin, _ in seen].count(2012) == 1
    note = result.notes[2014]
    assert note["first_fit"]["diagnostics"]["problems"] == ["max R-hat 1.2"]
    assert note["refit_sampler"]["draws"] == 3000
    assert "first_fit" not in result.notes[2012]
    from vekst.evaluate.headline import headline_markdown

    headline = headline_markdown(result.table(pooled=True), notes=result.notes)
    expected = "gate: none; fitted a second time after a failed gate: [2014]"
    assert expected in headline


def test_without_refit_an_unconverged_origin_is_fitted_once(small_panel, monkeypatch):
    seen: list = []
    _pipeline(monkeypatch, converged=lambda origin, config: False, sampler_seen=seen)
    config = BacktestConfig(
        origins=(2014,), horizon=1, methods=METHODS, n_draws=20, refit_unconverged=False
    )
    result = backtest(small_panel, config)
    assert len(seen) == 1 and result.converged() == {2014: False}


def test_a_failing_method_is_reported_and_the_others_are_kept(small_panel, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("sampler crashed")

    monkeypatch.setattr("vekst.workflow.fit_panel", broken)
    config = BacktestConfig(origins=(2012,), horizon=1, methods=METHODS, n_draws=20)
    result = backtest(small_panel, config)
    assert "sampler crashed" in result.notes[2012]["failed"]["bayes"]
    assert set(result.scores["method"]) == {"naive5", "no_migration"}


def test_store_reuses_an_origin_only_with_the_same_settings_data_and_code(
    small_panel, tmp_path, monkeypatch
):
    config = BacktestConfig(origins=(2012, 2013), horizon=2, methods=("naive5", "ccm5"))
    first = backtest(small_panel, config, store=tmp_path)
    store = OriginStore(tmp_path, config, small_panel, small_panel)
    assert store.has(2012) and store.has(2013)
    # interrupted run: the JSON of 2013 is missing, so 2013 is incomplete and runs again
    (tmp_path / "origin_2013.json").unlink()
    assert not store.has(2013)
    messages: list[str] = []
    again = backtest(small_panel, config, store=tmp_path, log=messages.append)
    assert "origin 2012: read from" in messages[0]
    assert any(m.startswith("origin 2013: naive5") for m in messages)
    pd.testing.assert_frame_equal(again.table(), first.table())
    # another seed, other data: not reused
    other = BacktestConfig(origins=(2012,), horizon=2, methods=("naive5", "ccm5"), seed=1)
    assert not OriginStore(tmp_path, other, small_panel, small_panel).has(2012)
    changed = small_panel.copy(deep=True)
    changed["population"][0, 0, 0, 0] += 1
    assert not OriginStore(tmp_path, config, changed, changed).has(2012)
    # the model's code changed since: not reused either
    monkeypatch.setattr("vekst.evaluate.store._code_digest", lambda: "another version")
    assert not OriginStore(tmp_path, config, small_panel, small_panel).has(2012)


@pytest.mark.parametrize(
    ("divergences", "problems", "draws", "target_accept"),
    [
        (3, ("3 divergent transitions",), 1500, 0.99),
        (0, ("R-hat 1.012 > 1.01 for 'attract_region_sigma'",), 3000, 0.95),
        (34, ("bulk ESS 338 < 400 for 'year_effect_mu'", "34 divergent transitions"), 3000, 0.99),
    ],
)
def test_a_refit_is_aimed_at_what_failed(divergences, problems, draws, target_accept):
    from vekst.evaluate.methods import refit_settings
    from vekst.workflow import SamplerConfig

    first = SamplerConfig(draws=1500, tune=1000, chains=4, target_accept=0.95, seed=7)
    failed = SimpleNamespace(divergences=divergences, problems=problems)
    second = refit_settings(first, failed)
    assert (second.draws, second.target_accept) == (draws, target_accept)
    assert (second.tune, second.chains, second.seed) == (1000, 4, 7)
