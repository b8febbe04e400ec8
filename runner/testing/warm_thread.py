"""A module that starts a thread when imported: the warm worker must refuse to fork after importing it
(tests/local/test_local_warm.py), since a fork copies only the forking thread."""

from __future__ import annotations

import threading

STOP = threading.Event()
threading.Thread(target=STOP.wait, name="warm-thread-probe", daemon=True).start()
