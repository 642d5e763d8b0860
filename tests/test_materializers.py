"""What steps return most, stored and read back through materializers chosen when the pipeline is traced.

A return type nothing can store is an error before anything runs, naming the step and the fix;
users register their own with `@stackhop.materializer`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

import stackhop
from stackhop import RunStatus
from stackhop.core import materializers
from stackhop.errors import ConfigError, PipelineDefinitionError, StackhopError


def ok(handle) -> None:
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message


def chosen(module, pipeline: str = "p") -> dict[str, str | None]:
    return {f"{s.name}.{o.name}": o.materializer for s in getattr(module, pipeline).build().steps for o in s.outputs
            if o.from_return}


def test_numpy_pandas_pydantic_and_dataclass_returns_round_trip_between_steps(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from dataclasses import dataclass, field

        import numpy as np
        import pandas as pd
        from pydantic import BaseModel
        from stackhop import pipeline, step

        class Report(BaseModel):
            name: str
            scores: list[float]

        @dataclass
        class Point:
            x: int
            y: int

        @dataclass
        class Shape:
            label: str
            corners: list[Point] = field(default_factory=list)

        @step
        def array() -> np.ndarray:
            return np.arange(6, dtype="int64").reshape(2, 3)

        @step
        def frame() -> pd.DataFrame:
            return pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})

        @step
        def series() -> pd.Series:
            return pd.Series([0.5, 1.5], name="loss")

        @step
        def report() -> Report:
            return Report(name="eval", scores=[0.9, 0.8])

        @step
        def shape() -> Shape:
            return Shape("square", [Point(0, 0), Point(1, 1)])

        @step
        def check(a: np.ndarray, f: pd.DataFrame, s: pd.Series, r: Report, sh: Shape) -> str:
            assert isinstance(r, Report) and isinstance(sh, Shape) and isinstance(sh.corners[1], Point)
            return f"{a.sum()} {list(f.b)} {s.name}:{s.sum()} {r.scores[0]} {sh.corners[1].y}"

        @pipeline
        def p():
            check(a=array().output, f=frame().output, s=series().output, r=report().output, sh=shape().output)
    """)

    assert chosen(module) == {"array.output": "numpy", "frame.output": "pandas-parquet", "series.output": "pandas-parquet",
                      "report.output": "pydantic", "shape.output": "dataclass"}

    handle = stackhop.run(module.p, progress=False)

    ok(handle)
    assert handle.artifact("check", "output").value == "15 ['x', 'y'] loss:2.0 0.9 1"
    assert handle.artifact("report", "output").load().name == "eval"
    assert handle.artifact("series", "output").load().tolist() == [0.5, 1.5]
    assert handle.artifact("shape", "output").load(as_type=module.Shape).corners[0] == module.Point(0, 0)


def test_a_scikit_learn_estimator_is_stored_with_skops_without_pickle(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from sklearn.linear_model import LogisticRegression
        from stackhop import pipeline, step

        @step
        def fit() -> LogisticRegression:
            return LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])

        @step
        def predict(model: LogisticRegression) -> int:
            return int(model.predict([[2.5]])[0])

        @pipeline
        def p():
            predict(model=fit().output)
    """)

    assert chosen(module) == {"fit.output": "skops"}
    handle = stackhop.run(module.p, progress=False)

    ok(handle)
    assert handle.artifact("predict", "output").value == 1
    ref = handle.artifact("fit", "output")
    assert ref.materializer == "skops" and ref.materializer_meta == {"trusted": []}
    assert type(ref.load()).__name__ == "LogisticRegression"


def test_skops_trusts_exactly_the_types_the_writing_step_recorded(tmp_path: Path) -> None:
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from stackhop.plugins.materializers.sklearn import SkopsMaterializer

    global Shift  # importable by skops, as a user's project class is

    class Shift(BaseEstimator, TransformerMixin):
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            return X

    Shift.__qualname__ = "Shift"
    own, swapped = str(tmp_path / "own.skops"), str(tmp_path / "swapped.skops")
    meta = SkopsMaterializer().save(make_pipeline(Shift(), LogisticRegression()), own)
    plain = SkopsMaterializer().save(LogisticRegression(), swapped)
    SkopsMaterializer().save(make_pipeline(Shift(), LogisticRegression()), swapped)  # replaced behind its back

    assert meta == {"trusted": [f"{__name__}.Shift"]}
    assert type(SkopsMaterializer().load(own, None, meta)).__name__ == "Pipeline"
    with pytest.raises(StackhopError, match=rf"holds types the step that wrote it did not record \({__name__}.Shift\)"):
        SkopsMaterializer().load(swapped, None, plain)


def test_without_skops_an_estimator_needs_skops_or_consent_to_pickle(monkeypatch) -> None:
    from sklearn.tree import DecisionTreeClassifier

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "skops" else real(name, *a))

    with pytest.raises(PipelineDefinitionError) as refused:
        materializers.choose(DecisionTreeClassifier, allow_pickle=False, where="step 'fit'")
    assert str(refused.value) == (
        "step 'fit' returns a sklearn.tree._classes.DecisionTreeClassifier; storing it needs skops (pip install skops), "
        "or pass allow_pickle=True to @step to store it with joblib.")
    assert materializers.choose(DecisionTreeClassifier, allow_pickle=True, where="step 'fit'") == "joblib"


def test_without_pyarrow_data_frames_are_stored_as_json_tables(monkeypatch, tmp_path: Path) -> None:
    import pandas as pd

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    name = materializers.choose(pd.DataFrame, allow_pickle=False, where="step 'f'")
    path = str(tmp_path / "frame")

    saved, meta, _ = materializers.save(pd.DataFrame({"a": [1, 2]}), path, name=name, allow_pickle=False, where="step 'f'")

    assert saved == "pandas-json"
    assert materializers.load(path, saved, meta=meta)["a"].tolist() == [1, 2]


def test_an_unstorable_return_type_is_refused_when_traced_with_the_fix(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        import threading
        from stackhop import pipeline, step

        @step
        def make() -> threading.Thread:
            return threading.Thread()

        @pipeline
        def p():
            make()
    """)

    with pytest.raises(PipelineDefinitionError) as refused:
        module.p.build()

    assert str(refused.value) == (
        f"step 'make' of pipeline 'p' returns a threading.Thread, which no materializer stores; return bytes, JSON-able "
        "data, a numpy array, a DataFrame, a dataclass or a pydantic model, register a materializer for threading.Thread "
        "with @stackhop.materializer, or pass allow_pickle=True to @step to pickle it.")


def test_a_value_that_does_not_match_its_annotation_fails_the_step_in_one_sentence(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        import numpy as np
        from stackhop import pipeline, step

        @step
        def liar() -> np.ndarray:
            return [1, 2, 3]

        @pipeline
        def p():
            liar()
    """)

    handle = stackhop.run(module.p, progress=False)

    assert handle.status == RunStatus.FAILED
    assert handle.steps()["liar"].message == (
        "step 'liar' returned a builtins.list, but its return annotation chose materializer 'numpy', which stores "
        "numpy.ndarray; return that type or change the annotation.")


def test_returns_annotated_any_are_stored_by_what_they_turn_out_to_be(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from typing import Any
        import numpy as np
        from stackhop import pipeline, step

        @step
        def anything(kind: str) -> Any:
            return np.ones(2) if kind == "array" else {"kind": kind}

        @pipeline
        def p():
            anything(kind="array").set_name("array")
            anything(kind="dict").set_name("mapping")
    """)

    handle = stackhop.run(module.p, progress=False)

    ok(handle)
    assert handle.artifact("array", "output").materializer == "numpy"
    assert handle.artifact("mapping", "output").materializer == "json"
    assert handle.artifact("mapping", "output").load() == {"kind": "dict"}


USER_MATERIALIZER = """
    from pathlib import Path
    import stackhop
    from stackhop import Materializer, pipeline, step

    class Vocabulary:
        def __init__(self, words):
            self.words = list(words)

    @stackhop.materializer
    class VocabularyFile(Materializer):
        name = "vocabulary-lines"
        types = (Vocabulary,)

        def save(self, value, path):
            Path(path).write_text("\\n".join(value.words))
            return {"count": len(value.words)}

        def load(self, path, expected, meta):
            assert meta["count"] == len(Path(path).read_text().splitlines())
            return Vocabulary(Path(path).read_text().splitlines())

    @step
    def build_vocabulary() -> Vocabulary:
        return Vocabulary(["cat", "dog"])

    @step
    def size(vocabulary: Vocabulary) -> int:
        return len(vocabulary.words)

    @pipeline
    def p():
        size(vocabulary=build_vocabulary().output)
"""


def test_a_materializer_registered_with_the_decorator_stores_its_type(project: Path, write_pipeline) -> None:
    module = write_pipeline(USER_MATERIALIZER)

    assert chosen(module) == {"build_vocabulary.output": "vocabulary-lines"}
    handle = stackhop.run(module.p, progress=False)

    ok(handle)
    assert handle.artifact("size", "output").value == 2
    assert handle.artifact("build_vocabulary", "output").load().words == ["cat", "dog"]


def test_a_user_materializer_reusing_a_built_in_name_is_refused_unless_it_overrides(project: Path) -> None:
    from stackhop import Materializer

    class MyNumpy(Materializer):
        name = "numpy"
        types = ("numpy.ndarray",)

        def save(self, value, path): ...

        def load(self, path, expected, meta): ...

    with pytest.raises(ConfigError, match=r"materializer 'numpy' from .* clashes with the one stackhop \(entry point "
                                          r"stackhop.plugins.materializers\) provides; rename it, or set `override = True`"):
        stackhop.materializer(MyNumpy)

    class Replacement(MyNumpy):
        override = True

    try:
        assert stackhop.materializer(Replacement) is Replacement
        assert materializers.registered()["numpy"] is Replacement
    finally:
        materializers._registered.pop("numpy", None)


def test_a_namedtuple_step_may_return_a_plain_tuple(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from typing import NamedTuple
        from stackhop import pipeline, step

        class Split(NamedTuple):
            train: int
            test: int

        @step
        def split(n: int = 10) -> Split:
            return n - 2, 2

        @step
        def total(a: int, b: int) -> int:
            return a + b

        @pipeline
        def p():
            parts = split()
            total(a=parts.outputs["train"], b=parts.outputs["test"])
    """)

    handle = stackhop.run(module.p, progress=False)

    ok(handle)
    assert handle.artifact("split", "train").value == 8
    assert handle.artifact("total", "output").value == 10


def test_a_materializer_without_save_or_load_is_refused_when_registered() -> None:
    from stackhop import Materializer

    class Half(Materializer):
        name = "half"

        def save(self, value, path): ...

    with pytest.raises(ConfigError, match=r"materializer 'half' \(.*Half\) must define load\(\); add them\."):
        stackhop.materializer(Half)


def test_two_user_materializers_of_one_name_clash() -> None:
    from stackhop import Materializer

    class First(Materializer):
        name = "mine"

        def save(self, value, path): ...

        def load(self, path, expected, meta): ...

    class Second(First):
        pass

    try:
        stackhop.materializer(First)
        with pytest.raises(ConfigError, match=r"materializer 'mine' from .* clashes with the one module "):
            stackhop.materializer(Second)
    finally:
        materializers._registered.pop("mine", None)


def test_an_open_return_that_json_would_change_is_not_stored_as_json(tmp_path: Path) -> None:
    with pytest.raises(StackhopError, match=r"would not come back the same from JSON"):
        materializers.save({1: "a"}, str(tmp_path / "x"), name=materializers.AUTO, allow_pickle=False, where="step 's'")
    name, _, _ = materializers.save({1: "a"}, str(tmp_path / "y"), name=materializers.AUTO, allow_pickle=True,
                                    where="step 's'")
    assert name == "pickle"


def test_a_materializer_failing_inside_its_library_fails_in_one_sentence(tmp_path: Path) -> None:
    import numpy as np

    with pytest.raises(StackhopError, match=r"materializer 'numpy' could not store a numpy.ma.MaskedArray "
                                            r"\(NotImplementedError: .*\); annotate the value"):
        materializers.save(np.ma.masked_array([1, 2], mask=[0, 1]), str(tmp_path / "m"), name="numpy",
                           allow_pickle=False, where="step 's'")


@dataclass
class Inner:
    a: int


@dataclass
class Outer:
    inner: Optional[Inner]
    others: list[Inner]


def test_nested_optional_dataclass_fields_are_rebuilt() -> None:
    from stackhop.plugins.materializers.dataclass import rebuild

    assert rebuild(Outer, {"inner": {"a": 5}, "others": [{"a": 1}]}) == Outer(Inner(5), [Inner(1)])
