"""I1: from image settings to "reused" for an unchanged image (target <= 1 s: no rebuild).

    python benchmarks/i1_image_reuse.py

Needs buildah, docker-registry and busybox-static (Debian). Builds the image once into a
loopback registry, then times what `stackhop build` does when nothing changed: trace the
pipeline, render every step's Dockerfile and context, hash them, and ask the registry for the
tag (one HEAD per image). Both a fresh process (`stackhop build` end to end) and the in-process
call are measured.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _common import emit

PIPELINE = '''
from stackhop import ImageSettings, pipeline, step

@step
def prepare() -> int:
    return 1

@step
def train(x: int) -> int:
    return x

@pipeline(image=ImageSettings(parent_image="{base}", requirements=["numpy==2.1.0"]))
def shipped():
    train(x=prepare().output)
'''


def main() -> None:
    from stackhop.core.stack import Stack, StackConfig
    from stackhop.images.builders.buildah import BuildahBuilder
    from stackhop.images.spec import BuildSpec
    from stackhop.testing.registry import LocalRegistry

    if shutil.which("buildah") is None or LocalRegistry.unavailable() or not Path("/bin/busybox").exists():
        print("I1 skipped: needs buildah, docker-registry and busybox-static (apt-get install ...)", file=sys.stderr)
        return
    root = Path(tempfile.mkdtemp(prefix="stackhop-i1-"))
    storage = {"root": str(root / "storage"), "runroot": str(root / "run")}
    with LocalRegistry() as registry:
        base = BuildSpec(name="base", repository=f"{registry.host}/bench/base", tag="1",
                         dockerfile="FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n"
                                    'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]\n'
                                    "COPY --chmod=755 python /usr/local/bin/python\n",
                         context=(("busybox", Path("/bin/busybox").read_bytes()), ("python", b"#!/bin/sh\nexit 0\n")))
        BuildahBuilder(BuildahBuilder.Settings(**storage), Stack("b", StackConfig(), root, "bench")).build(base, lambda _: None)
        (root / "stackhop.yaml").write_text(yaml.safe_dump({"stacks": {"ci": {
            "adapter": "kubernetes", "artifact_root": "s3://bench/x",
            "images": {"builder": "buildah", "builder_settings": storage, "registry": f"{registry.host}/ml"}}}}))
        (root / "shipped.py").write_text(PIPELINE.format(base=base.reference))
        os.chdir(root)
        stackhop = [sys.executable, "-m", "stackhop.cli.main", "build", "shipped.py", "--stack", "ci"]
        start = time.perf_counter()
        subprocess.run(stackhop, check=True, capture_output=True)
        first = time.perf_counter() - start
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            out = subprocess.run(stackhop, check=True, capture_output=True, text=True).stdout
            timings.append(time.perf_counter() - start)
            assert out.startswith("reused"), out
        sys.path.insert(0, str(root))
        from stackhop.core.api import to_ir
        from stackhop.core.source import import_file
        from stackhop.core.stack import apply_stack, load_stack
        from stackhop.images.build import build_images

        stk = load_stack("ci")
        inproc = []
        for _ in range(5):
            start = time.perf_counter()
            ir, code_root = to_ir(import_file(root / "shipped.py").shipped)
            outcomes = build_images(apply_stack(ir, stk), stk, code_root, lambda _: None)
            inproc.append(time.perf_counter() - start)
            assert all(o.result == "reused" for o in outcomes)
    shutil.rmtree(root, ignore_errors=True)
    emit({"benchmark": "I1 image reuse", "first_build_s": round(first, 2),
          "reused_cli_s": round(sorted(timings)[len(timings) // 2], 3),
          "reused_in_process_s": round(sorted(inproc)[len(inproc) // 2], 3), "target_s": 1.0})


if __name__ == "__main__":
    main()
