"""``python -m components.config``: print the config reference; ``--write-readme FILE``
writes it between FILE's markers (``make config-reference``)."""

import sys
from pathlib import Path

from components.config.reference import config_reference_markdown, with_reference

if __name__ == "__main__":
    if sys.argv[1:2] == ["--write-readme"]:
        path = Path(sys.argv[2])
        path.write_text(with_reference(path.read_text()))
    else:
        print(config_reference_markdown(), end="")
