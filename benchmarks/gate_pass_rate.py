"""Gate pass rate of the default national fit over seeds (issue: the fit converges every time).

Fits the default spec on the embedded panel with the default sampler settings of
``vekst fit`` / ``vekst demo`` once per seed and prints, per seed, the convergence gate's
verdict, the worst R-hat, the smallest bulk and tail ESS with the variables they belong to,
divergences and wall time; then the pass rate. Results are appended to a JSON-lines file as
each seed finishes, so an interrupted run keeps what it measured.

Usage::

    python benchmarks/gate_pass_rate.py --seeds 1 2 3 --out gate_pass_rate.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import vekst
from vekst.commands.demo import DemoSettings
from vekst.workflow import SamplerConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--out", type=Path, default=Path("gate_pass_rate.jsonl"))
    parser.add_argument("--draws", type=int, default=None, help="Default: the demo's.")
    parser.add_argument("--tune", type=int, default=None, help="Default: the demo's.")
    parser.add_argument("--target-accept", type=float, default=None, help="Default: the demo's.")
    args = parser.parse_args()
    defaults = DemoSettings()
    panel = vekst.load_default()
    passed = 0
    for i, seed in enumerate(args.seeds, start=1):
        config = SamplerConfig(
            draws=args.draws or defaults.draws, tune=args.tune or defaults.tune,
            target_accept=args.target_accept or defaults.target_accept,
            chains=defaults.chains, seed=seed, progress=False,
        )
        start = time.perf_counter()
        fit = vekst.fit_panel(panel, config=config)
        wall = time.perf_counter() - start
        record = {
            "seed": seed, "draws": config.draws, "tune": config.tune,
            "target_accept": config.target_accept, "wall_s": round(wall, 1),
            "mean_tree_steps": float(fit.idata.sample_stats["n_steps"].mean())
            if "n_steps" in fit.idata.sample_stats else None,
            **fit.diagnostics.as_dict(),
        }
        passed += bool(record["converged"])
        with args.out.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
        print(
            f"seed {seed}: {'passed' if record['converged'] else 'FAILED'}; R-hat "
            f"{record['rhat_max']:.3f}, bulk ESS {record['ess_bulk_min']:.0f}, tail ESS "
            f"{record['ess_tail_min']:.0f} (worst {record.get('worst')}), divergences "
            f"{record['divergences']}, {wall:.0f} s; pass rate so far {passed}/{i}",
            flush=True,
        )


if __name__ == "__main__":
    main()
