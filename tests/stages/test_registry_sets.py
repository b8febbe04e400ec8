"""The registry's sets of types (which produce a model, which serve chat) follow what is registered: they
are made once per set of types (issue 17, P2), and a plugin registered or removed later is seen at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.stages import STAGE_TYPES
from runner.stages.deploy import DeployStage
from runner.stages.model import ModelStage
from runner.stages.registry import chat_servers, model_producers, register, unregister


class ImportedModel(ModelStage):
    name = "imported_model"


class Gateway(DeployStage):
    name = "gateway"


@pytest.fixture
def clean() -> Iterator[None]:
    yield
    for name in ("imported_model", "gateway"):
        unregister(name)


def test_a_type_registered_after_the_sets_were_asked_for_is_in_them(clean: None) -> None:
    before_models, before_servers = model_producers(), chat_servers()
    assert "imported_model" not in before_models
    assert "gateway" not in before_servers
    register(ImportedModel())
    register(Gateway())
    assert model_producers() == before_models | {"imported_model"}
    assert chat_servers() == before_servers | {"gateway"}


def test_an_unregistered_type_leaves_the_sets(clean: None) -> None:
    register(ImportedModel())
    assert "imported_model" in model_producers()
    unregister("imported_model")
    assert "imported_model" not in model_producers()
    assert model_producers() == frozenset(n for n, t in STAGE_TYPES.items() if t.produces_model)
