"""The model zoo: trained checkpoints shipped with the package, listed in `index.json` (see `zoo/index.py`)."""

from avhighlights.zoo.index import (  # noqa: F401  (the zoo's API)
    ZOO_DIR_ENV,
    ZOO_PREFIX,
    ZooEntry,
    default_entry,
    zoo_dir,
    zoo_entries,
    zoo_entry,
    zoo_path,
)
