"""A rebuild of the views with SQLAlchemy's multi-row ``INSERT`` ("insertmanyvalues", the
dialect flag ``use_insertmanyvalues_wo_returning``) off and on, in turns (issue 20, step 2:
measured, not kept): ``python -m bench.insert_many_values [INTERACTIONS] [VIEWS_URL]``.

The dataset is recorded once into a temporary directory; each round resets the projections
and replays the store as ``hub projections rebuild`` does (``bench.rebuild.rebuild_all``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from bench.rebuild import rebuild_all
from bench.workload import build_dataset
from hub.config import Settings
from hub.runtime import Runtime


def main(interactions: int, views_url: str | None, rounds: int = 2) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        build_dataset(data, customers=max(1, interactions // 10), messages=interactions, seed=31)
        extra = {"views_url": views_url} if views_url else {}
        runtime = Runtime(Settings(data_dir=data, **extra))
        runtime.start()
        try:
            dialect = runtime.views.engine.dialect
            for _ in range(rounds):
                for flag in (False, True):
                    dialect.use_insertmanyvalues_wo_returning = flag
                    result = rebuild_all(runtime)
                    print(f"multi-row {'on ' if flag else 'off'}: {result['rate']:,.0f} events/s")
        finally:
            runtime.stop()


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 20_000,
        sys.argv[2] if len(sys.argv) > 2 else None,
        int(os.environ.get("ROUNDS", "2")),
    )
