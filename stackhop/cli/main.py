"""The `stackhop` command. Commands import the core lazily so `stackhop --help` stays instant.

User errors print one sentence and exit 2 (a traceback only with --debug); a failed run exits
1; a run cancelled with Ctrl-C exits 130.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from stackhop.errors import StackhopError

app = typer.Typer(
    help="Write an ML pipeline once; run it locally, on Kubernetes, SageMaker, Vertex AI or Kubeflow.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
runs_app = typer.Typer(help="Runs recorded in this project's run store.", no_args_is_help=True)
stacks_app = typer.Typer(help="Stacks defined in stackhop.yaml.", no_args_is_help=True)
releases_app = typer.Typer(help="Releases made in this project.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(stacks_app, name="stacks")
app.add_typer(releases_app, name="releases")

_state: dict[str, Any] = {"debug": False, "config": None}

ConfigOpt = typer.Option(None, "--config", help="Path to stackhop.yaml (default: searched upward from here).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _version(value: bool) -> None:
    if value:
        from stackhop import __version__

        typer.echo(f"stackhop {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for user errors."),
    config: Optional[Path] = typer.Option(None, "--config", help="Path to stackhop.yaml for every command "
                                          "(default: searched upward from here)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    _state["debug"] = debug
    _state["config"] = str(config) if config else None


def _config(local: Optional[Path]) -> Optional[str]:
    return str(local) if local else _state["config"]


def _emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _parse_params(values: List[str]) -> dict[str, str]:
    from stackhop.errors import ParameterError

    out: dict[str, str] = {}
    for item in values:
        if "=" not in item:
            raise ParameterError(f"parameter {item!r} must be written name=value, e.g. -p min_accuracy=0.9.")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ParameterError(f"parameter {item!r} has no name before '='; write name=value, e.g. -p min_accuracy=0.9.")
        if key in out:
            raise ParameterError(f"parameter {key!r} is given twice (-p {key}={out[key]} and -p {item}); keep one.")
        out[key] = value
    return out


# ------------------------------------------------------------------------------- run / compile


@app.command()
def run(
    target: str = typer.Argument(..., help="FILE[:PIPELINE], e.g. examples/training/pipeline.py"),
    stack: Optional[str] = typer.Option(None, "--stack", "-s", help="Stack name (default: $STACKHOP_STACK, then default_stack)."),
    param: List[str] = typer.Option([], "--param", "-p", help="Pipeline parameter name=value; repeatable."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step even when a cached result exists."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Submit and return at once with the run id."),
    emulate: bool = typer.Option(False, "--emulate", help="Run the compiled backend document on this machine."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Run a pipeline on a stack and follow it."""
    from stackhop.cli.load import load_pipeline
    from stackhop.core.api import new_run_id
    from stackhop.core.api import run as run_pipeline
    from stackhop.core.progress import TerminalView

    pipeline = load_pipeline(target)
    run_id = new_run_id()
    follower = None if (json_out or detach) else TerminalView(sys.stderr, run_id, summary=False)
    try:
        handle = run_pipeline(
            pipeline, stack, _parse_params(param), wait=not detach, cache=not no_cache, config=_config(config),
            on_update=follower.update if follower else None, emulate=emulate, progress=False, run_id=run_id,
            _parameters_are_strings=True,
        )
    except KeyboardInterrupt:
        if follower:
            follower.close()
        typer.echo(f"cancelled run {run_id}", err=True)
        raise typer.Exit(130)
    if follower:
        follower.close()
    state = handle.state()
    dashboard = handle.ref.data.get("dashboard")
    if dashboard and not json_out:
        typer.echo(f"dashboard: {dashboard}", err=True)
    if json_out:
        extra = {"dashboard": dashboard} if dashboard else {}
        _emit_json({"run_id": handle.run_id, "pipeline": handle.pipeline, "stack": handle.stack.name, **extra,
                    **state.to_dict()})
    elif detach:
        typer.echo(handle.run_id)
    else:
        typer.echo(f"run {handle.run_id} {state.status.value}" + (f": {state.message}" if state.message else ""))
    if not detach and state.status.value != "SUCCEEDED":
        raise typer.Exit(130 if state.status.value == "CANCELLED" else 1)


@app.command()
def compile(
    target: str = typer.Argument(..., help="FILE[:PIPELINE]"),
    stack: Optional[str] = typer.Option(None, "--stack", "-s"),
    out: Path = typer.Option(Path("compiled"), "--output", "-o", help="Directory for the backend documents."),
    explain: bool = typer.Option(False, "--explain", help="Also say what the backend chose for each step and why."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Write the backend documents for a pipeline on a stack (pure: no network, same bytes every time)."""
    from stackhop.cli.load import load_pipeline
    from stackhop.core.api import compile as compile_pipeline
    from stackhop.core.api import explain as explain_pipeline

    pipeline = load_pipeline(target)
    compiled = compile_pipeline(pipeline, stack, config=_config(config))
    explained = explain_pipeline(pipeline, stack, config=_config(config)) if explain else {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in sorted(compiled.files.items()):
            (out / name).write_bytes(data)
    except OSError as exc:
        raise StackhopError(f"cannot write the compiled documents to {str(out)!r} ({exc.strerror}); "
                            "pass a folder you can write with -o.") from None
    if json_out:
        _emit_json({"adapter": compiled.adapter, "digest": compiled.digest(), "files": sorted(compiled.files),
                    "output": str(out), "notes": list(compiled.notes), **({"explain": explained} if explain else {})})
        return
    for step_name, lines in explained.items():
        typer.echo(f"{step_name}:")
        for line in lines:
            typer.echo(f"  {line}")
    from stackhop.core.adapter import Note

    for note in compiled.notes:
        typer.echo(f"{'note' if isinstance(note, Note) else 'warning'}: {note}", err=True)
    for name in sorted(compiled.files):
        typer.echo(str(out / name))
    typer.echo(f"{compiled.adapter} document digest {compiled.digest()}", err=True)


@app.command()
def build(
    target: str = typer.Argument(..., help="FILE[:PIPELINE]"),
    stack: Optional[str] = typer.Option(None, "--stack", "-s"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the Dockerfiles; build nothing."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Build and push the images a pipeline needs on a stack (reusing unchanged ones), and pin their digests."""
    from stackhop.cli.load import load_pipeline
    from stackhop.core.api import to_ir
    from stackhop.core.stack import apply_stack, load_stack
    from stackhop.images.build import build_images
    from stackhop.images.plan import describe, plan_images

    ir, root = to_ir(load_pipeline(target))
    stk = load_stack(stack, config=_config(config))
    effective = apply_stack(ir, stk)
    plan = plan_images(effective, stk, root)
    for warning in plan.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if dry_run:
        if json_out:
            _emit_json({**describe(plan), "dockerfiles": {b.reference: b.dockerfile for b in plan.builds}})
            return
        for spec in plan.builds:
            typer.echo(f"# {spec.reference}  (steps: {', '.join(spec.steps)}; context: {len(spec.context)} files)")
            typer.echo(spec.dockerfile)
        for step_name, ref in sorted(plan.given.items()):
            typer.echo(f"# {step_name}: prebuilt {ref}")
        if not plan.builds and not plan.given:
            typer.echo(f"nothing to build: no step of pipeline {ir.name!r} runs in an image on stack {stk.name!r}",
                       err=True)
        return
    outcomes = build_images(effective, stk, root, lambda line: typer.echo(line, err=True), plan)
    if json_out:
        _emit_json({"images": [o.__dict__ for o in outcomes]})
        return
    for o in outcomes:
        typer.echo(f"{o.result:8} {o.reference}@{o.digest}  {o.seconds:.2f}s  ({', '.join(o.steps)})")
    if not outcomes:
        typer.echo("nothing to build: every step names a prebuilt image", err=True)


def _summary(text: str) -> None:
    """Append markdown to the GitHub Actions step summary when running there."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")


@app.command()
def release(
    target: str = typer.Argument(..., help="FILE[:PIPELINE] to release, or `show`"),
    release_id: Optional[str] = typer.Argument(None, help="with `show`: the release id"),
    stack: Optional[str] = typer.Option(None, "--stack", "-s", help="The stack the release starts on."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Release a pipeline (IR, code, images, compiled documents for every stack), or `release show ID`."""
    from stackhop.core.stack import load_config
    from stackhop.promotion.release import create_release, load_release

    loaded = load_config(_config(config))
    if target == "show":
        if not release_id:
            raise StackhopError("`stackhop release show` needs a release id; list them in .stackhop/releases/.")
        manifest = load_release(release_id, loaded)
    else:
        from stackhop.cli.load import load_pipeline

        manifest = create_release(load_pipeline(target), stack, loaded)
    content = manifest["content"]
    if target != "show":
        _summary(f"### stackhop release `{manifest['release_id']}`\n\npipeline `{content['pipeline']}`, IR "
                 f"`{content['ir_digest']}`, from `{content['source_stack']}`")
    if json_out:
        _emit_json(manifest)
        return
    typer.echo(manifest["release_id"])
    typer.echo(f"pipeline {content['pipeline']}  IR {content['ir_digest']}  from stack {content['source_stack']}", err=True)
    for name, doc in content["compiled"].items():
        typer.echo(f"  {name}: " + (f"{doc['adapter']} {doc['digest']}" if "digest" in doc else f"not compilable: {doc['error']}"),
                   err=True)
    if target == "show":
        from stackhop.core.api import project_store

        promotions = project_store(loaded).promotions(manifest["release_id"])
        typer.echo("promotions:" if promotions else "promotions: none yet", err=True)
        for p in promotions:
            typer.echo(f"  {_when(p['at'])}  {p['from']} -> {p['to']}  {p['result']}"
                       + (f"  run {p['run_id']}" if p.get("run_id") else "")
                       + (f": {p['reason']}" if p.get("reason") else ""), err=True)


def _when(at: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


@releases_app.command("list")
def releases_list(json_out: bool = JsonOpt, config: Optional[Path] = ConfigOpt) -> None:
    """List the releases made here, newest first, with the stacks each reached."""
    from stackhop.core.api import project_store
    from stackhop.core.stack import load_config
    from stackhop.promotion.release import local_dir

    loaded = load_config(_config(config))
    folder = local_dir(loaded)
    store = project_store(loaded)
    reached: dict[str, list[str]] = {}
    for p in store.all_promotions():
        if p.get("result") == "promoted":
            reached.setdefault(p["release_id"], []).append(p["to"])
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            manifest = json.loads(path.read_text())
            content = manifest["content"]
            rows.append({"release_id": manifest["release_id"], "pipeline": content["pipeline"],
                         "source_stack": content["source_stack"], "created_at": content.get("created", {}).get("at"),
                         "git_commit": content.get("created", {}).get("git_commit"),
                         "promoted_to": reached.get(manifest["release_id"], [])})
        except (OSError, ValueError, KeyError, TypeError):
            typer.echo(f"warning: {path} is not a release manifest; skipped", err=True)
    rows.sort(key=lambda r: r["created_at"] or 0, reverse=True)
    if json_out:
        _emit_json(rows)
        return
    if not rows:
        typer.echo(f"no releases yet in {folder}; make one with `stackhop release FILE`.", err=True)
    for r in rows:
        when = _when(r["created_at"]) if r["created_at"] else "?"
        typer.echo(f"{r['release_id']}  {r['pipeline']:<20} {when}  from {r['source_stack']}"
                   + (f"  promoted to {', '.join(r['promoted_to'])}" if r["promoted_to"] else ""))


@app.command()
def promote(
    release_id: str = typer.Argument(...),
    to: str = typer.Option(..., "--to", help="The stack to promote to."),
    run: bool = typer.Option(False, "--run", help="Also start a run on the target stack (and wait for it)."),
    force: bool = typer.Option(False, "--force", help="Skip the promotion order (gates still apply)."),
    approve: Optional[str] = typer.Option(None, "--approve", help="Approve as NAME, for stacks whose gates ask for it."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Promote a release to the next stack: same IR, the target's settings, gates checked, promotion recorded."""
    from stackhop.core.stack import load_config
    from stackhop.promotion.promote import promote as promote_release

    try:
        record = promote_release(release_id, to, run=run, force=force, approved_by=approve,
                                 config=load_config(_config(config)))
    except StackhopError as exc:
        _summary(f"### stackhop promote `{release_id}` → `{to}`: refused\n\n{exc}")
        raise
    if json_out:
        _emit_json(record)
    else:
        for gate in record["gates"]:
            typer.echo(f"gate {gate['gate']}: {'passed' if gate['passed'] else 'FAILED'} ({gate['detail']})", err=True)
        typer.echo(f"promoted {record['release_id']} {record['from']} -> {record['to']}"
                   + (f"; run {record['run_id']} {record['run_status']}" if record.get("run_id") else ""))
    gates = "".join(f"\n| {g['gate']} | {'✅' if g['passed'] else '❌'} | {g['detail']} |" for g in record["gates"])
    _summary(f"### stackhop promote `{record['release_id']}`: `{record['from']}` → `{record['to']}`\n\n"
             f"| gate | | detail |\n|---|---|---|{gates}")
    if record.get("run_status") not in (None, "SUCCEEDED"):
        raise typer.Exit(1)


@app.command()
def diff(
    target: str = typer.Argument(..., help="FILE[:PIPELINE]"),
    stack: list[str] = typer.Option(..., "--stack", "-s", help="Give it twice: the two stacks to compare."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Show what differs between two stacks' compiled versions of a pipeline (settings, images, backend choices)."""
    from stackhop.cli.load import load_pipeline
    from stackhop.core.stack import load_config
    from stackhop.promotion.diff import diff as diff_stacks
    from stackhop.promotion.diff import markdown

    if len(stack) != 2:
        raise StackhopError("`stackhop diff` compares two stacks; pass --stack twice, e.g. --stack staging --stack prod.")
    result = diff_stacks(load_pipeline(target), stack[0], stack[1], load_config(_config(config)))
    text = markdown(result)
    _summary(text)
    if json_out:
        _emit_json(result)
    else:
        typer.echo(text)


@app.command()
def graph(
    target: str = typer.Argument(..., help="FILE[:PIPELINE]"),
    svg: Optional[Path] = typer.Option(None, "--svg", help="Also render an SVG with graphviz's `dot`, when installed."),
    json_out: bool = JsonOpt,
) -> None:
    """Print the pipeline's graph as Mermaid text."""
    from stackhop.cli.graph import mermaid, render_svg
    from stackhop.cli.load import load_pipeline

    ir = load_pipeline(target).build()
    if json_out:
        _emit_json({"pipeline": ir.name, "digest": ir.digest(), "steps": [s.name for s in ir.steps],
                    "edges": ir.edges(), "groups": [g.model_dump(mode="json") for g in ir.groups]})
    else:
        typer.echo(mermaid(ir))
    if svg:
        typer.echo(render_svg(ir, svg), err=True)


@app.command()
def cancel(run_id: str = typer.Argument(...), config: Optional[Path] = ConfigOpt) -> None:
    """Ask a run's backend to stop it."""
    from stackhop.core.api import get_run

    get_run(run_id, config=_config(config)).cancel()
    typer.echo(f"cancel requested for {run_id}")


@app.command()
def logs(
    run_id: str = typer.Argument(...),
    step: Optional[str] = typer.Argument(None, help="Step (e.g. train, train[2] or train[lr=0.05]); all steps when omitted."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing a running step's new lines until it ends."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Print a run's step logs."""
    from stackhop.core.api import get_run

    handle = get_run(run_id, config=_config(config))
    if follow:
        if not step:
            raise StackhopError("`stackhop logs --follow` follows one step; name it, e.g. "
                                f"`stackhop logs {run_id} train --follow`.")
        for chunk in handle.follow_logs(step):
            typer.echo(chunk, nl=False)
        return
    steps = handle.steps()
    chosen = [step] if step else list(steps)
    if json_out:
        _emit_json({key: handle.logs(key) for key in chosen})
        return
    if step:
        typer.echo(handle.logs(step), nl=False)
        return
    for key in chosen:
        typer.echo(f"===== {key} =====")
        typer.echo(handle.logs(key), nl=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of stackhop.yaml."""
    from stackhop.core.stack import json_schema

    _emit_json(json_schema())


# ------------------------------------------------------------------------------- runs


@runs_app.command("list")
def runs_list(
    pipeline: Optional[str] = typer.Option(None, "--pipeline"),
    stack: Optional[str] = typer.Option(None, "--stack", "-s"),
    limit: int = typer.Option(20, "--limit", "-n", min=1),
    refresh: float = typer.Option(5.0, "--refresh-seconds", min=0,
                                  help="How long to spend asking backends about unfinished runs (0: not at all)."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """List runs, newest first; unfinished ones are asked for their status first, in parallel, for at most
    --refresh-seconds, and those that did not answer say when they were last seen."""
    from stackhop.core.api import list_runs, project_store
    from stackhop.core.handles import refresh_unfinished

    store = project_store(_config(config))
    records = list_runs(store, pipeline=pipeline, stack=stack, limit=limit)
    if refresh > 0:
        records = refresh_unfinished(records, store, seconds=refresh, config=_config(config))
    if json_out:
        _emit_json([r.to_dict() for r in records])
        return
    where = f"runs in {store.path}" if store.exists else f"no runs yet: {store.path} does not exist"
    typer.echo(where, err=True)
    from stackhop.cli.progress import runs_table

    runs_table(records)


@runs_app.command("resume")
def runs_resume(
    run_id: str = typer.Argument(...),
    from_step: Optional[str] = typer.Option(None, "--from", help="Run this step and everything downstream of it again."),
    skip: List[str] = typer.Option([], "--skip", help="Leave this step (and the steps that read it) out; repeatable."),
    param: List[str] = typer.Option([], "--param", "-p", help="Change a parameter, name=value; repeatable."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Start the new run and return at once with its id."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Continue a run that failed or stopped: a new run, from the pipeline's code as it is now, that reuses every
    step that finished with an unchanged cache key and says why each other step runs again."""
    from stackhop.core.api import get_run, new_run_id
    from stackhop.core.progress import TerminalView
    from stackhop.core.resume import pipeline_of, resume
    from stackhop.core.runs import StepStatus

    origin = get_run(run_id, config=_config(config))
    pipeline = pipeline_of(origin)
    new_id = new_run_id()
    follower: list[Any] = []  # made at the first update: a refused resume prints only its error

    def update(state: Any) -> None:
        if not follower:
            typer.echo(f"resuming run {origin.run_id} as run {new_id}", err=True)
            follower.append(TerminalView(sys.stderr, new_id, summary=False))
        follower[0].update(state)

    try:
        handle = resume(origin, pipeline=pipeline, from_step=from_step, skip=skip, parameters=_parse_params(param),
                        wait=not detach, progress=False, config=_config(config), run_id=new_id,
                        on_update=None if (json_out or detach) else update, _parameters_are_strings=True)
    finally:
        if follower:
            follower[0].close()
    if detach and not json_out:
        typer.echo(f"resuming run {origin.run_id} as run {new_id}", err=True)
    if not json_out and handle.ref.data.get("mechanism"):
        typer.echo(f"{handle.adapter.name} resumes by {handle.ref.data['mechanism']}"
                   + (f": {handle.ref.data['note']}" if handle.ref.data.get("note") else ""), err=True)
    state = handle.state()
    reasons = {k: ", ".join((s.cache or {}).get("changed") or []) for k, s in state.steps.items()
               if s.status is not StepStatus.CACHED and (s.cache or {}).get("result") == "miss"}
    if json_out:
        _emit_json({"run_id": handle.run_id, "origin_run_id": origin.run_id, "ran_again": reasons, **state.to_dict()})
        return
    if detach:
        typer.echo(handle.run_id)
        return
    reused = [k for k, s in state.steps.items() if s.native == "resumed"]
    typer.echo(f"reused {len(reused)} step(s) of run {origin.run_id}: {', '.join(reused) or 'none'}", err=True)
    for key, why in reasons.items():
        typer.echo(f"ran {key} again: {why}", err=True)
    typer.echo(f"run {handle.run_id} {state.status.value}" + (f": {state.message}" if state.message else ""))
    if state.status.value != "SUCCEEDED":
        raise typer.Exit(130 if state.status.value == "CANCELLED" else 1)


@runs_app.command("delete")
def runs_delete(
    run_ids: List[str] = typer.Argument(..., help="The runs to delete."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be deleted; delete nothing."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Delete runs: their records and the artifacts only they own. A run that is unfinished, that a release or
    promotion relies on, or whose outputs another run reuses is kept, and the command says why."""
    from stackhop.core.api import get_run, project_store

    store = project_store(_config(config))
    records = [store.get(get_run(r, config=_config(config)).run_id) for r in run_ids]
    _removal(store, records, dry_run, json_out, config, refuse_kept=True)


@runs_app.command("gc")
def runs_gc(
    older_than: str = typer.Option(..., "--older-than", help="Age of the runs to delete, e.g. 30d, 12h, 90m."),
    keep_last: int = typer.Option(0, "--keep-last", min=0, help="Keep this many newest runs of each pipeline "
                                                                "on each stack, however old."),
    pipeline: Optional[str] = typer.Option(None, "--pipeline", help="Only this pipeline's runs."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be deleted; delete nothing."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Delete old runs and reclaim their artifact space, never one a release or promotion relies on, one that is
    unfinished, or one whose outputs a kept run reuses."""
    from stackhop.core.api import project_store
    from stackhop.core.lifecycle import gc_candidates, older_than as seconds

    store = project_store(_config(config))
    records = gc_candidates(store, older_than_seconds=seconds(older_than), keep_last=keep_last, pipeline=pipeline)
    _removal(store, records, dry_run, json_out, config, refuse_kept=False)


def _removal(store: Any, records: list[Any], dry_run: bool, json_out: bool, config: Optional[Path],
             *, refuse_kept: bool) -> None:
    from stackhop.core.lifecycle import plan, remove
    from stackhop.core.stack import load_config
    from stackhop.promotion.release import relied_on

    loaded = load_config(_config(config))
    planned = plan(store, records, relied_on(store, loaded))
    done = planned if dry_run else remove(store, planned, config=loaded)
    if json_out:
        _emit_json({"dry_run": dry_run, "runs": [r.to_dict() for r in done],
                    "freed_bytes": sum(r.freed_bytes for r in done)})
    else:
        verb = "would delete" if dry_run else "deleted"
        for r in done:
            typer.echo(f"kept {r.run_id}: {r.kept}" if r.kept else
                       f"{verb} {r.run_id} ({r.pipeline})" + ("" if dry_run else f", {r.freed_bytes} bytes freed"),
                       err=bool(r.kept))
        gone = [r for r in done if not r.kept]
        typer.echo(f"{verb} {len(gone)} run(s)" + ("" if dry_run else f", {sum(r.freed_bytes for r in gone)} "
                                                                      "bytes freed")
                   + (f"; kept {len(done) - len(gone)}" if len(gone) < len(done) else ""), err=True)
    kept = [r for r in done if r.kept]
    if refuse_kept and kept:
        raise StackhopError(f"run {kept[0].run_id} was not deleted: {kept[0].kept}.")


@runs_app.command("compare")
def runs_compare(
    run_ids: List[str] = typer.Argument(..., help="Two or more runs."),
    json_out: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Compare runs: the parameters that differ, metrics side by side, and steps whose status or cache key differ."""
    from stackhop.core.api import get_run
    from stackhop.core.run_metrics import compare

    if len(run_ids) < 2:
        raise StackhopError("`stackhop runs compare` needs two or more runs.")
    result = compare([get_run(r, config=_config(config)) for r in run_ids])
    if json_out:
        _emit_json(result)
        return
    from stackhop.cli.progress import comparison

    comparison(result)


@runs_app.command("metrics")
def runs_metrics(
    pipeline: Optional[str] = typer.Option(None, "--pipeline"),
    stack: Optional[str] = typer.Option(None, "--stack", "-s"),
    last: int = typer.Option(20, "--last", "-n", min=1, help="How many of the newest runs."),
    json_out: bool = JsonOpt,
    csv_out: bool = typer.Option(False, "--csv", help="Print CSV (a header row, then a row per run)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """The metrics of the last runs, a row per run (oldest first) and a column per metric."""
    from stackhop.core.handles import runs
    from stackhop.core.run_metrics import rows

    table = rows(runs(pipeline, stack=stack, limit=last, config=_config(config)))
    if json_out:
        _emit_json(table)
        return
    columns = list(dict.fromkeys(k for r in table for k in r))
    if csv_out:
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        return
    from stackhop.cli.progress import metrics_table

    metrics_table(table, columns)


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(...), json_out: bool = JsonOpt, config: Optional[Path] = ConfigOpt) -> None:
    """Show one run: status, parameters, steps and outputs."""
    from stackhop.core.api import get_run

    handle = get_run(run_id, config=_config(config))
    state = handle.state()
    record = handle.store.get(handle.run_id)
    outputs = [
        {"step": a.step, "output": a.output, "type": a.type, "uri": a.uri, **({"value": a.value} if a.value is not None else {}),
         **({"metadata": a.metadata} if a.metadata else {})}
        for a in handle.artifacts()
    ]
    returned = handle.outputs
    pipeline_outputs = {
        name: {"step": o["step"], "output": o["output"], "type": o["type"],
               **({"uri": returned[name].uri} if name in returned else {"missing": True}),
               **({"value": returned[name].value} if name in returned and returned[name].value is not None else {})}
        for name, o in record.outputs.items()
    }
    if json_out:
        _emit_json({**record.to_dict(), "state": state.to_dict(), "outputs": outputs, "pipeline_outputs": pipeline_outputs})
        return
    from stackhop.cli.progress import show_run

    show_run(record, state, outputs, pipeline_outputs)


# ------------------------------------------------------------------------------- stacks


@stacks_app.command("list")
def stacks_list(json_out: bool = JsonOpt, config: Optional[Path] = ConfigOpt) -> None:
    """List stacks and which one is the default."""
    from stackhop.core.stack import default_stack_name, load_config

    loaded = load_config(_config(config))
    default = default_stack_name(loaded)
    rows = []
    for name in loaded.stack_names():
        cfg = loaded.file.stacks.get(name)
        rows.append({"name": name, "adapter": cfg.adapter if cfg else "local", "default": name == default,
                     "artifact_root": cfg.artifact_root if cfg else ".stackhop/artifacts",
                     "source": str(loaded.path) if cfg else "built-in"})
    if json_out:
        _emit_json(rows)
        return
    for r in rows:
        typer.echo(f"{'*' if r['default'] else ' '} {r['name']:<16} {r['adapter']:<12} {r['artifact_root']}  ({r['source']})")


@stacks_app.command("show")
def stacks_show(name: Optional[str] = typer.Argument(None), json_out: bool = JsonOpt, config: Optional[Path] = ConfigOpt) -> None:
    """Show a stack with its adapter settings validated."""
    from stackhop.core.stack import load_stack

    stk = load_stack(name, config=_config(config))
    data = {
        "name": stk.name, "source": stk.source, "artifact_root": stk.artifact_root,
        "config": stk.config.model_dump(mode="json"),
        "adapter_settings": stk.adapter_settings.model_dump(mode="json") if stk.adapter_settings else {},
    }
    if json_out:
        _emit_json(data)
        return
    import yaml

    typer.echo(yaml.safe_dump(data, sort_keys=False))


# ------------------------------------------------------------------------------- entry


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code = app(args=args, prog_name="stackhop", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):
            return code  # typer hands back a command's typer.Exit(code) as the return value here
    except SystemExit as exc:
        return int(exc.code or 0)
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except typer.Abort:
        return 130
    except Exception as exc:
        from stackhop.errors import StackhopError

        if isinstance(exc, typer.TyperException) and hasattr(exc, "show"):
            exc.show()
            return int(getattr(exc, "exit_code", 2))
        if isinstance(exc, StackhopError) and not debug:
            if getattr(exc, "details", ""):
                typer.echo(exc.details.rstrip("\n"), err=True)  # type: ignore[attr-defined]
            typer.echo(f"error: {exc}", err=True)
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
