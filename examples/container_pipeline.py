"""A plain image beside Python steps: busybox counts the long words, with nothing of stackhop inside it.

    stackhop run examples/container_pipeline.py

The container step's command runs as written: remote backends run it in `busybox:1.36` and move
its files their own way (KFP's launcher, SageMaker Processing inputs and outputs, an init
container and a sidecar on Kubernetes); on the local stack it runs on this machine's `sh` and
`awk`, or in the image with `settings.container_runtime: podman` (or docker).
"""

from __future__ import annotations

from stackhop import Dataset, Input, InputPath, InputValue, Markdown, Output, OutputPath, container_step, pipeline, step

COUNT_SCRIPT = """set -e
long='{for (i = 1; i <= NF; i++) if (length($i) >= n) print $i}'
{ echo '# Long words'; echo; awk -v n="$1" "$long" "$0" | sort -u | sed 's/^/- /'; } > "$2"
awk -v n="$1" "$long" "$0" | wc -l | tr -d ' ' > "$3"
"""


@step
def write_text(text: Output[Dataset]) -> None:
    with open(text.path, "w") as f:
        f.write("one pipeline definition many orchestrators locally kubernetes sagemaker vertex kubeflow\n")


@step
def summarize(report: Input[Markdown], count: int) -> str:
    body = open(report.path).read()
    print(body)
    return f"{count} long words"


@pipeline
def container_pipeline(min_len: int = 8):
    text = write_text()
    counted = container_step(
        "count-words",
        image="busybox:1.36",
        command=["sh", "-c", COUNT_SCRIPT],
        args=[InputPath("source"), InputValue("min_len"), OutputPath("report"), OutputPath("count")],
        inputs={"source": text.outputs["text"], "min_len": min_len},
        outputs={"report": Markdown, "count": int},
    )
    summarize(report=counted.outputs["report"], count=counted.outputs["count"])


if __name__ == "__main__":  # `python examples/container_pipeline.py`; importing the file runs nothing
    from stackhop import run

    run(container_pipeline)
