"""The local platform's data directory: where the store, files, pid file and log live.

One folder holds everything the local platform owns, so a user can back it up, inspect it or delete it as a
unit, and tests can point ``QFRUN_HOME`` at a temporary folder. Nothing here imports the model runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

HOME_ENV = "QFRUN_HOME"


@dataclass(frozen=True)
class Home:
    """The layout of one local platform's data directory (created on demand by ``ensure``)."""

    root: Path

    @classmethod
    def default(cls) -> Home:
        """``$QFRUN_HOME`` if set, else ``<user data dir>/qfrun/local``."""
        env = os.environ.get(HOME_ENV, "").strip()
        if env:
            return cls(Path(env).expanduser().resolve())
        return cls(Path(platformdirs.user_data_dir("qfrun")) / "local")

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def tasks_dir(self) -> Path:
        return self.root / "tasks"

    @property
    def services_dir(self) -> Path:
        return self.root / "services"

    @property
    def bos_dir(self) -> Path:
        """The object store (runner.local.bos_store) behind the platform's BOS API."""
        return self.root / "bos"

    @property
    def db_path(self) -> Path:
        return self.root / "platform.sqlite3"

    @property
    def info_path(self) -> Path:
        """``platform.json``: the url and pid of the running server, present only while it runs."""
        return self.root / "platform.json"

    @property
    def log_path(self) -> Path:
        return self.root / "platform.log"

    def task_dir(self, task_id: str) -> Path:
        return self.tasks_dir / task_id

    def service_dir(self, service_id: str) -> Path:
        return self.services_dir / service_id

    def ensure(self) -> Home:
        """Create the folders of the layout (idempotent) and return ``self``."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.root.stat().st_uid == os.getuid() and self.root.stat().st_mode & 0o077:
            self.root.chmod(0o700)  # a home made by an earlier qfrun, or by hand: only its owner gets in
        for folder in (self.models_dir, self.datasets_dir, self.tasks_dir, self.services_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self
