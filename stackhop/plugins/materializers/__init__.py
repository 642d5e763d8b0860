"""The built-in materializers, registered through the `stackhop_materializers` hook.

Each module imports its library (numpy, pandas ...) only inside `save` and `load`.
"""

from __future__ import annotations

from stackhop.core.plugins import hookimpl


@hookimpl
def stackhop_materializers() -> list[type]:
    from stackhop.plugins.materializers.builtin import BytesMaterializer, JsonMaterializer, PickleMaterializer
    from stackhop.plugins.materializers.dataclass import DataclassMaterializer
    from stackhop.plugins.materializers.numpy import NumpyMaterializer
    from stackhop.plugins.materializers.pandas import PandasJsonMaterializer, PandasParquetMaterializer
    from stackhop.plugins.materializers.pydantic import PydanticMaterializer
    from stackhop.plugins.materializers.sklearn import JoblibMaterializer, SkopsMaterializer

    return [BytesMaterializer, JsonMaterializer, PickleMaterializer, DataclassMaterializer, NumpyMaterializer,
            PandasParquetMaterializer, PandasJsonMaterializer, PydanticMaterializer, SkopsMaterializer, JoblibMaterializer]
