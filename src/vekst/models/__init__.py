"""Model specs, builders (migration, vital, joint), the OLS baseline and simulation.

* :mod:`~vekst.models.spec` -- declarative specs read from ``models/*.toml``.
* :mod:`~vekst.models.data` -- model-ready arrays computed from a panel.
* :mod:`~vekst.models.migration`, :mod:`~vekst.models.vital`, :mod:`~vekst.models.joint`
  -- builders returning ``pm.Model`` objects with named coords.
* :mod:`~vekst.models.ols` -- the published OLS procedure, labelled like the Bayesian output.
* :mod:`~vekst.models.simulate` -- draws from the migration model with known parameters.
"""

from vekst.models.spec import ModelSpec, SpecError, load_spec

__all__ = ["ModelSpec", "SpecError", "load_spec"]
