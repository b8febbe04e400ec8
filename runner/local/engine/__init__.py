"""The local platform's model runtime (torch, transformers, llmcompressor): imported only by workers.

Importing this package sets ``OMP_WAIT_POLICY=PASSIVE`` (unless already set) before any submodule loads
torch. Several model processes share a few cores here; OpenMP's default busy-waiting threads then fight each
other, and a training step of the demo model took 2.0 s with 2 spinning threads against 0.39 s with passive
ones on a loaded 2-core machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
