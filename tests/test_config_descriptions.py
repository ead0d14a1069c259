"""Every configuration field says what it is: the generated reference shows these descriptions."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from kairos_core.config.models import GatewayConfig


def reachable(root: type[BaseModel]) -> list[type[BaseModel]]:
    """`root` and every model its fields use, each once."""
    found = [root]
    for model in found:
        for field in model.model_fields.values():
            stack = [field.annotation]
            while stack:
                annotation = stack.pop()
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    if annotation not in found:
                        found.append(annotation)
                else:
                    stack.extend(getattr(annotation, "__args__", ()))
    return found


FIELDS = [
    (m.__name__, name, f) for m in reachable(GatewayConfig) for name, f in m.model_fields.items()
]


@pytest.mark.parametrize(("model", "name", "field"), FIELDS, ids=[f"{m}.{n}" for m, n, _ in FIELDS])
def test_config_field_has_a_description(model, name, field):
    assert field.description, f"{model}.{name} has no description (docs/reference/configuration)"
    assert field.description[0].isupper() or field.description[0] in "`.", field.description
