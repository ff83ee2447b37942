"""Features of the attractiveness model: pure functions ``panel -> DataArray``.

* :mod:`~vekst.features.jobs` -- relative job growth (RA), commuting shares, VRA.
* :mod:`~vekst.features.centrality` -- SSB centrality index, municipal and regional.
* :mod:`~vekst.features.labour` -- demographic employment supply (DS) and the national
  employment-rate profile.
* :mod:`~vekst.features.vital` -- expected births and deaths (indirect standardisation).
* :mod:`~vekst.features.housing` -- completed dwellings per 1,000 inhabitants.
* :mod:`~vekst.features.design` -- the net-migration rate and the design matrix.
"""

from vekst.features.centrality import MissingCentralityError, centrality, region_centrality
from vekst.features.commuting import ShareMatrix, share_matrix
from vekst.features.design import (
    DEFAULT_COVARIATES,
    UnknownCovariateError,
    design_matrix,
    net_migration_rate,
)
from vekst.features.housing import MissingHousingError, housing_rate
from vekst.features.jobs import (
    CommutingCoverageError,
    EmptyCommutingRowError,
    FeatureError,
    MissingCommutingError,
    MissingEmploymentError,
    commuting_shares,
    commuting_year_map,
    complete_commuting_years,
    national_job_growth,
    relative_job_growth,
    vra,
    vra_split,
)
from vekst.features.labour import (
    SSB_REGISTER_RATES_2006,
    EmploymentRateError,
    demographic_supply,
    ds_components,
    ds_percent,
    employment_curve,
    estimate_employment_profile,
)
from vekst.features.vital import (
    MissingRateError,
    death_probability,
    expected_births,
    expected_deaths,
    person_years,
    vital_deviation,
)

__all__ = [
    "DEFAULT_COVARIATES",
    "SSB_REGISTER_RATES_2006",
    "CommutingCoverageError",
    "EmploymentRateError",
    "EmptyCommutingRowError",
    "FeatureError",
    "MissingCentralityError",
    "MissingCommutingError",
    "MissingEmploymentError",
    "MissingHousingError",
    "MissingRateError",
    "ShareMatrix",
    "UnknownCovariateError",
    "centrality",
    "commuting_shares",
    "commuting_year_map",
    "complete_commuting_years",
    "death_probability",
    "demographic_supply",
    "design_matrix",
    "ds_components",
    "ds_percent",
    "employment_curve",
    "estimate_employment_profile",
    "expected_births",
    "expected_deaths",
    "housing_rate",
    "national_job_growth",
    "net_migration_rate",
    "person_years",
    "region_centrality",
    "relative_job_growth",
    "share_matrix",
    "vital_deviation",
    "vra",
    "vra_split",
]
