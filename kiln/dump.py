"""`kiln dump`: when `config.dump_dir` (KILN_DUMP_DIR) is set, every compiled graph writes each
stage to its own folder `graph_NNN/` there."""
from __future__ import annotations

import itertools
from pathlib import Path

from . import config

_counter = itertools.count()


class GraphDump:
    def __init__(self):
        root = config.dump_dir
        self.dir: Path | None = None
        if root:
            self.dir = Path(root) / f"graph_{next(_counter):03d}"
            self.dir.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, text) -> None:
        if self.dir is not None:
            (self.dir / name).write_text(text() if callable(text) else str(text))
