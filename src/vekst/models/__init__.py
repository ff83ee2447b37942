"""Model specs, builders (migration, vital, joint) and the OLS baseline.

* :mod:`~vekst.models.spec` -- declarative specs read from ``models/*.toml``.
* :mod:`~vekst.models.data` -- model-ready arrays computed from a panel.
* :mod:`~vekst.models.migration`, :mod:`~vekst.models.vital`, :mod:`~vekst.models.joint`
  -- builders returning ``pm.Model`` objects with named coords.
* :mod:`~vekst.models.ols` -- the published OLS procedure, labelled like the Bayesian output.
* Draws from the migration model with known parameters: :mod:`vekst.simulate`.
"""

from vekst.models.spec import ModelSpec, SpecError, load_spec

__all__ = ["ModelSpec", "SpecError", "load_spec"]
