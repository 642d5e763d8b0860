"""pydantic models as their JSON; read back into the consumer's annotated model class, else the writer's."""

from __future__ import annotations

import json
from typing import Any

from stackhop.core.materializers import Materializer, import_class, qualified


class PydanticMaterializer(Materializer):
    name = "pydantic"
    types = ("pydantic.main.BaseModel",)
    requires = ("pydantic",)

    def save(self, value: Any, path: str) -> dict[str, Any]:
        with open(path, "w") as f:
            f.write(value.model_dump_json())
        return {"class": qualified(type(value))}

    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> Any:
        with open(path) as f:
            text = f.read()
        cls = expected if expected is not None and hasattr(expected, "model_validate_json") else import_class(meta.get("class"))
        return cls.model_validate_json(text) if cls is not None else json.loads(text)
