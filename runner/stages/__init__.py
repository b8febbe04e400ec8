"""The five stage types, one module each; ``STAGE_TYPES`` is the registry the executor and planner use."""

from __future__ import annotations

from collections.abc import Mapping

from runner.stages.base import StageType
from runner.stages.compress import CompressStage
from runner.stages.deploy import DeployStage
from runner.stages.evaluate import EvaluateStage
from runner.stages.infer import InferStage
from runner.stages.model import ModelStage

STAGE_TYPES: Mapping[str, StageType] = {
    stage.name: stage
    for stage in (ModelStage(), InferStage(), EvaluateStage(), CompressStage(), DeployStage())
}

__all__ = ["STAGE_TYPES"]
