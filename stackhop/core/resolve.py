"""Resolve IR values and conditions for one step instance, from a run spec and the artifact store.

Works on the IR's JSON form (plain dicts), not the pydantic models: the entrypoint in every
step process uses it and must start fast. The local runner and the emulators use it too, so
"what does this input hold" has exactly one answer.
"""

from __future__ import annotations

import json
import operator
import re
from typing import Any, Callable

from stackhop.core.artifacts import ArtifactStore
from stackhop.core.wiring import Wiring

Index = tuple[int, ...]


def read_spec(uri: str) -> dict[str, Any]:
    """A run spec from a local path or an artifact-store URI; local paths skip fsspec."""
    if "://" not in uri:
        with open(uri) as f:
            return json.load(f)
    return ArtifactStore.for_uri(uri).read_json(uri)


class RunView:
    """A run spec plus the artifact store it points at, and the wiring that says where a step's data is.

    The wiring defaults to the run layout, which every scheduler-driven executor uses; a step
    process on a backend that hands data around itself gets its adapter's wiring.
    """

    wiring: Wiring

    def __init__(self, spec: dict[str, Any], store: ArtifactStore | None = None, wiring: Wiring | None = None):
        self.spec = spec
        self.ir = spec["pipeline"]
        self.run_id: str = spec["run_id"]
        self.parameters: dict[str, Any] = spec["parameters"]
        self.store = store or ArtifactStore(spec["artifact_root"])
        self.steps = {s["name"]: s for s in self.ir["steps"]}
        self.groups = {g["id"]: g for g in self.ir.get("groups", [])}
        self._outputs: dict[tuple[str, Index], dict[str, Any]] = {}
        self._names: dict[tuple[str, Index], list[str]] = {}
        self.wiring = wiring if wiring is not None else Wiring()

    @property
    def pipeline(self) -> str:
        return self.ir["name"]

    # -------------------------------------------------------------- loops
    def chain(self, group_id: str | None) -> list[dict[str, Any]]:
        """Enclosing groups, outermost first."""
        out = []
        while group_id is not None:
            g = self.groups[group_id]
            out.append(g)
            group_id = g.get("parent")
        return out[::-1]

    def loops(self, step: str) -> list[dict[str, Any]]:
        return [g for g in self.chain(self.steps[step].get("group")) if g["kind"] == "parallel_for"]

    def loop_items(self, group: dict[str, Any], outer: Index = ()) -> list[Any]:
        """The items of a loop, at `outer`: the iteration of each loop around it (a step's list output differs per iteration)."""
        items = group["items"]
        if items.get("param") is not None:
            value = self.parameters[items["param"]]
            if not isinstance(value, list):
                raise ValueError(f"ParallelFor parameter {items['param']!r} must be a list, got {type(value).__name__}")
            return value
        if items.get("output") is not None:
            ref = items["output"]
            record = self.outputs(ref["step"], self.upstream_index(ref["step"], outer))
            value = record.get("scalars", {}).get(ref["output"])
            if not isinstance(value, list):
                raise ValueError(f"{group['id']} iterates over output {ref['output']!r} of step {ref['step']!r}, which "
                                 f"returned {type(value).__name__} {_short(value)}, not a list")
            return value
        if items.get("item") is not None:
            return self._items_of_item(group, items["item"], outer)
        return list(items["static"])

    def _items_of_item(self, group: dict[str, Any], ref: dict[str, Any], outer: Index) -> list[Any]:
        """`ParallelFor(config.lrs)`: the list in the current item of the enclosing loop `ref` names."""
        loops = [g for g in self.chain(group.get("parent")) if g["kind"] == "parallel_for"]
        pos = next(i for i, g in enumerate(loops) if g["id"] == ref["loop"])
        item = self.loop_items(loops[pos], outer[:pos])[outer[pos]]
        field = ref.get("field")
        value = item.get(field) if field and isinstance(item, dict) else None if field else item
        if not isinstance(value, list):
            what = f"field {field!r} of the item" if field else "the item"
            raise ValueError(f"{group['id']} iterates over {what} of {ref['loop']}, which holds "
                             f"{type(value).__name__} {_short(value)} in item {_short(item)}, not a list")
        return value

    def instances(self, step: str) -> list[Index]:
        """Every loop index this step runs at (one empty index when it is in no loop)."""
        indexes: list[Index] = [()]
        for loop in self.loops(step):
            indexes = [ix + (i,) for ix in indexes for i in range(len(self.loop_items(loop, ix)))]
        return indexes

    def iteration_label(self, step: str, index: Index) -> str:
        """`train[lr=0.05]`: the instance named after its loops' items, so two runs' iterations match."""
        names = [self._item_names(loop, index[:pos])[index[pos]] for pos, loop in enumerate(self.loops(step))]
        return step + "".join(f"[{n}]" for n in names)

    def _item_names(self, loop: dict[str, Any], outer: Index) -> list[str]:
        if (loop["id"], outer) not in self._names:
            self._names[(loop["id"], outer)] = item_names(self.loop_items(loop, outer), loop.get("key"))
        return self._names[(loop["id"], outer)]

    def collected(self, step: str, output: str, consumer: str, index: Index) -> list[Any]:
        """`Collected(step.output)` for a consumer at `index`: every iteration's value below the loops they share."""
        shared = index[: _common(self.loops(consumer), self.loops(step))]
        values = []
        for up_index in self.instances(step):
            if up_index[: len(shared)] == shared and self.ran(step, up_index):
                record = self.outputs(step, up_index)
                values.append(record["scalars"][output] if output in record.get("scalars", {}) else record["artifacts"][output])
        return values

    # -------------------------------------------------------------- outputs
    def outputs_uri(self, step: str, index: Index) -> str:
        """Where the run layout keeps a step instance's `outputs.json`."""
        return self.store.step_meta(self.pipeline, self.run_id, step, index, "outputs.json")

    def outputs(self, step: str, index: Index) -> dict[str, Any]:
        key = (step, index)
        if key not in self._outputs:
            if self.steps[step]["kind"] == "importer":  # its record follows from the IR: no backend writes one
                from stackhop.core.importing import imported_record  # lazy: only pipelines that import need it

                uri = next(i for i in self.steps[step]["inputs"] if i["name"] == "uri")
                try:
                    value = self.value(uri["value"], step, index)
                except KeyError:  # a parameter this step process was not handed: its wiring has the URI
                    value = None
                self._outputs[key] = imported_record(self.steps[step], value)
            else:
                self._outputs[key] = self.store.read_json(self.wiring.outputs_location(self, step, index))
        return self._outputs[key]

    def remember_outputs(self, step: str, index: Index, record: dict[str, Any]) -> None:
        self._outputs[(step, index)] = record

    def upstream_index(self, upstream: str, index: Index) -> Index:
        return index[: len(self.loops(upstream))]

    # -------------------------------------------------------------- values
    def value(self, value: dict[str, Any], consumer: str, index: Index) -> Any:
        """A scalar's value, or an artifact's output record (a dict with "uri")."""
        kind = value["kind"]
        if kind == "const":
            return value["value"]
        if kind == "param":
            return self.parameters[value["name"]]
        if kind == "loop_item":
            loops = self.loops(consumer)
            pos = next(i for i, g in enumerate(loops) if g["id"] == value["loop"])
            item = self.loop_items(loops[pos], index[:pos])[index[pos]]
            return item[value["field"]] if value.get("field") else item
        if kind == "collected":
            return self.collected(value["step"], value["output"], consumer, index)
        if kind == "oneof":  # the branch that ran is the one that left outputs
            for ref in value["values"]:
                try:
                    return self.value(ref, consumer, index)
                except Exception:
                    continue
            raise ValueError(f"no branch of {', '.join(r['step'] for r in value['values'])} produced an output")
        step, output = value["step"], value["output"]
        record = self.outputs(step, self.upstream_index(step, index))
        if output in record.get("scalars", {}):
            return record["scalars"][output]
        return record["artifacts"][output]

    def input_value(self, spec: dict[str, Any], consumer: str, index: Index) -> Any:
        """A step input as the wiring hands it over: a scalar, or an artifact's output record."""
        return self.wiring.input(self, spec, consumer, index)

    def output_uri(self, step: str, output: str, index: Index) -> str:
        """Where the wiring places an artifact output."""
        return self.wiring.output_uri(self, step, output, index)

    def write_meta(self, step: str, index: Index, name: str, data: Any) -> None:
        """`outputs.json` or `error.json`, where the wiring keeps them."""
        self.wiring.write_meta(self, step, index, name, data)

    def condition(self, expr: dict[str, Any], consumer: str, index: Index) -> bool:
        return evaluate(expr, lambda v: self.value(v, consumer, index))

    def ran(self, step: str, index: Index) -> bool:
        """Whether an iteration of a step inside `If` in its loop ran: Collected leaves out the ones that did not."""
        groups = self.chain(self.steps[step].get("group"))
        if not any(g["kind"] == "condition" for g in groups):
            return True
        return self.conditions_hold(step, index)[0]

    def conditions_hold(self, step: str, index: Index) -> tuple[bool, str]:
        for g in self.chain(self.steps[step].get("group")):
            if g["kind"] == "condition" and not self.condition(g["condition"], step, index):
                return False, g["id"]
        return True, ""


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


def evaluate(expr: dict[str, Any], lookup: Callable[[dict[str, Any]], Any]) -> bool:
    kind = expr["kind"]
    if kind == "compare":
        return bool(_OPS[expr["op"]](lookup(expr["left"]), lookup(expr["right"])))
    if kind == "not":
        return not evaluate(expr["operand"], lookup)
    results = (evaluate(e, lookup) for e in expr["operands"])
    return all(results) if kind == "and" else any(results)


def iteration_labels(pipeline: dict[str, Any], parameters: dict[str, Any], artifact_root: str,
                     keys: list[str]) -> dict[str, str]:
    """Instance key -> its name after its items, for the loops whose items are known without running anything
    (static lists and parameters): what a backend that unrolls loops when compiling can name at submit."""
    view = RunView({"pipeline": pipeline, "run_id": "", "parameters": parameters, "artifact_root": artifact_root})
    out = {}
    for key in keys:
        try:
            step, index = parse_instance_key(key)
            if index and not any(loop["items"].get("output") for loop in view.loops(step)):
                label = view.iteration_label(step, index)
                if label != key:
                    out[key] = label
        except Exception:  # a key or list it cannot read is named by its index, as before
            continue
    return out


def item_names(items: list[Any], key: str | None) -> list[str]:
    """What each iteration of a loop over `items` is called: after its item, or all by index when one has no name."""
    names = [_item_name(x, key) for x in items]
    if None in names or len(set(names)) != len(names):
        return [str(i) for i in range(len(items))]
    return names  # type: ignore[return-value]


def _common(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n]["id"] == b[n]["id"]:
        n += 1
    return n


_NAME_TEXT = re.compile(r"^[A-Za-z_][\w.\-:/@+]{0,39}$")


def _item_name(item: Any, key: str | None) -> str | None:
    """A short, bracket-free name for one loop item, or None when it has none."""
    if key is not None:
        if not isinstance(item, dict) or key not in item:
            return None
        value = _name_value(item[key])
        return f"{key}={value}" if value is not None else None
    if isinstance(item, dict):
        parts = [(k, _name_value(v)) for k, v in sorted(item.items())]
        text = ",".join(f"{k}={v}" for k, v in parts)
        ok = parts and all(v is not None and _NAME_TEXT.match(str(k)) for k, v in parts) and len(text) <= 48
        return text if ok else None
    if isinstance(item, str):
        return item if _NAME_TEXT.match(item) else None
    value = _name_value(item)
    return f"item={value}" if value is not None else None


def _name_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str) and _NAME_TEXT.match(value):
        return value
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def instance_key(step: str, index: Index) -> str:
    return step + "".join(f"[{i}]" for i in index)


_KEY = re.compile(r"^([^\[\]]+)((?:\[\d+\])*)$")


def parse_instance_key(key: str) -> tuple[str, Index]:
    """`train[2][0]` -> ("train", (2, 0)); anything else is an ArtifactError, never a path."""
    from stackhop.errors import ArtifactError

    match = _KEY.match(key) if isinstance(key, str) else None
    if match is None:
        raise ArtifactError(f"{key!r} is not a step key; write a step name, or name[i] for a loop iteration.")
    return match.group(1), tuple(int(x) for x in re.findall(r"\d+", match.group(2)))
