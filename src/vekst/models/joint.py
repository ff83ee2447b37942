"""The joint model: migration, fertility and mortality blocks in one ``pm.Model``.

The blocks share coords (``municipality``, ``region``) so their municipal effects line up
in one posterior; each block's likelihood is independent given its parameters.
"""

from __future__ import annotations

import pymc as pm

from vekst.models.data import MigrationData, VitalData
from vekst.models.migration import add_migration_block
from vekst.models.spec import ModelSpec
from vekst.models.vital import add_vital_block

__all__ = ["build_joint_model"]


def build_joint_model(
    spec: ModelSpec,
    migration: MigrationData,
    births: VitalData | None = None,
    deaths: VitalData | None = None,
) -> pm.Model:
    """Build the joint model.

    Parameters
    ----------
    spec
        The model spec; a vital block is added when it is enabled and its data are given.
    migration
        Migration arrays.
    births, deaths
        Observed and expected events; ``None`` skips the block (e.g. deaths on the embedded
        data, which has no observed deaths).

    Returns
    -------
    pymc.Model
    """
    coords = migration.coords()
    blocks = []
    if births is not None and spec.fertility.enabled:
        coords["births_year"] = [int(y) for y in births.years]
        blocks.append((spec.fertility, births))
    if deaths is not None and spec.mortality.enabled:
        coords["deaths_year"] = [int(y) for y in deaths.years]
        blocks.append((spec.mortality, deaths))
    with pm.Model(coords=coords) as model:
        add_migration_block(spec, migration)
        for vspec, data in blocks:
            add_vital_block(vspec, data)
    return model
