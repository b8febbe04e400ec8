"""The stage types, one module each, registered in ``runner.stages.registry`` (``STAGE_TYPES``)."""

from __future__ import annotations

from runner.stages.compress import CompressStage
from runner.stages.deploy import DeployStage
from runner.stages.evaluate import EvaluateStage
from runner.stages.infer import InferStage
from runner.stages.model import ModelStage
from runner.stages.registry import STAGE_TYPES, register

for _stage_type in (ModelStage(), InferStage(), EvaluateStage(), CompressStage(), DeployStage()):
    register(_stage_type)

__all__ = ["STAGE_TYPES", "register"]
