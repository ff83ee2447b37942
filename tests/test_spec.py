"""Model specs: shipped files load, bad files list every problem at once."""

import pytest

from vekst.models.spec import SpecError, default_spec_path, load_spec, spec_from_dict


def test_shipped_specs_load_with_expected_structure():
    full = load_spec()
    assert full.name == "vareide2022"
    assert full.migration.covariates == ("vra_0", "vra_1", "vra_2", "centrality", "ds")
    assert full.migration.attractiveness == ("region", "municipality")
    no_jobs = load_spec("no_jobs")
    assert not any(c.startswith("vra") for c in no_jobs.migration.covariates)


def test_spec_round_trips_and_hash_tracks_content():
    spec = load_spec()
    again = spec_from_dict(spec.to_dict())
    assert again == spec
    assert again.hash == spec.hash
    changed = spec.to_dict()
    changed["migration"]["priors"]["beta_mu_mean"]["ds"] = -0.5
    assert spec_from_dict(changed).hash != spec.hash


def test_every_problem_is_reported_at_once(tmp_path):
    text = default_spec_path().read_text()
    text = text.replace('likelihood = "student_t"', 'likelihood = "cauchy"\ncolour = "red"')
    text = text.replace(
        'covariates = ["vra_0", "vra_1", "vra_2", "centrality", "ds"]',
        'covariates = ["vra_0", "vra_2", "centrality", "ds", "housing"]',
    )
    text = text.replace(
        'attractiveness = ["region", "municipality"]', 'attractiveness = ["county", "municipality"]'
    )
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message
    assert "unknown key 'colour'" in message
    assert "likelihood 'cauchy'" in message
    assert "unknown covariate 'housing'" in message
    assert "skip a lag" in message
    assert "'county' attractiveness level needs the 'region'" in message
    assert "no value for 'housing'" in message
    assert len(info.value.problems) >= 6


def test_missing_prior_for_a_covariate_is_named():
    raw = load_spec().to_dict()
    del raw["migration"]["priors"]["beta_sigma_sd"]["ds"]
    with pytest.raises(SpecError, match="beta_sigma_sd has no value for 'ds'"):
        spec_from_dict(raw)


def test_student_t_nu_with_normal_likelihood_is_an_impossible_combination():
    raw = load_spec().to_dict()
    raw["migration"]["likelihood"] = "normal"
    with pytest.raises(SpecError, match="student_t_nu is set but the likelihood is 'normal'"):
        spec_from_dict(raw)


@pytest.mark.parametrize("option", ["attractiveness_orthogonal_to", "loading_orthogonal_to"])
def test_terms_can_only_be_orthogonal_to_a_covariate_of_the_model(option):
    spec = load_spec()
    assert getattr(spec.migration, option) == ("centrality",)
    changed = spec.to_dict()
    changed["migration"][option] = ["unemployment"]
    with pytest.raises(SpecError, match=rf"{option}.*unemployment"):
        spec_from_dict(changed)
    # A spec saved before the option existed still reads, without it.
    del changed["migration"][option]
    assert getattr(spec_from_dict(changed).migration, option) == ()


def test_exchangeable_year_coefficients_leave_the_var_block():
    # no_jobs lists DS: its year coefficients are non-centred around beta_mu with no
    # autoregression, while centrality's stay a centred state of the VAR(1) block.
    from vekst import load_default
    from vekst.models.joint import build_joint_model
    from vekst.workflow import model_inputs

    assert load_spec("no_jobs").migration.year_coefficients_exchangeable == ("ds",)
    for name in ("vareide2022", "housing"):
        assert load_spec(name).migration.year_coefficients_exchangeable == ()
    spec = load_spec("no_jobs")
    model = build_joint_model(spec, *model_inputs(load_default(), spec))
    free = {rv.name for rv in model.free_RVs}
    assert "beta_year_ds_z" in free and "beta_year_ds" not in free
    assert "beta_year_centrality" in free
    assert model.coords["block_state"] == ("national_net_migration", "year_effect", "centrality")
    rho = model.compile_fn(model["rho"], inputs=model.value_vars, on_unused_input="ignore")(
        model.initial_point()
    )
    assert rho[list(model.coords["state"]).index("ds")] == 0.0
    assert rho[list(model.coords["state"]).index("centrality")] > 0.0
    # Without the option DS is a state of the block again.
    raw = spec.to_dict()
    raw["migration"]["year_coefficients_exchangeable"] = []
    plain = spec_from_dict(raw)
    model = build_joint_model(plain, *model_inputs(load_default(), plain))
    assert "ds" in model.coords["block_state"]


def test_exchangeable_year_coefficients_must_name_covariates_of_the_model():
    changed = load_spec().to_dict()
    changed["migration"]["year_coefficients_exchangeable"] = ["unemployment"]
    with pytest.raises(SpecError, match=r"year_coefficients_exchangeable.*unemployment"):
        spec_from_dict(changed)
    del changed["migration"]["year_coefficients_exchangeable"]
    assert spec_from_dict(changed).migration.year_coefficients_exchangeable == ()
