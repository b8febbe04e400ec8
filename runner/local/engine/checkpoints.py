"""Which checkpoints a fine-tuning job left in its task folder, without importing torch: the platform process
asks it when it resumes a task after a restart, the job process when it starts again."""

from __future__ import annotations

from pathlib import Path

CHECKPOINTS = (
    "checkpoints"  # <task folder>/checkpoints/checkpoint-<step>, as transformers' Trainer names them
)


def checkpoint_steps(workdir: Path) -> list[int]:
    """The steps of the complete checkpoints, oldest first. Trainer writes ``trainer_state.json`` after the
    weights and optimizer state, so a folder without it is one a kill interrupted."""
    folder = workdir / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(
        int(path.name.rsplit("-", 1)[-1])
        for path in folder.glob("checkpoint-*")
        if path.name.rsplit("-", 1)[-1].isdigit() and (path / "trainer_state.json").is_file()
    )


def last_checkpoint(workdir: Path) -> Path | None:
    """The newest complete checkpoint of an earlier (killed) run of this job, if any."""
    steps = checkpoint_steps(workdir)
    return workdir / CHECKPOINTS / f"checkpoint-{steps[-1]}" if steps else None
