"""A container step beside Python steps: the command gets its input and output paths as placeholders.

    stackhop run examples/container_pipeline.py

On the local stack the command runs on this machine (the image is used by remote backends).
"""

from __future__ import annotations


from stackhop import Dataset, Input, InputPath, InputValue, Markdown, Output, OutputPath, container_step, pipeline, step

COUNT_SCRIPT = """
import sys
source, min_len, report, count = sys.argv[1:5]
words = [w for w in open(source).read().split() if len(w) >= int(min_len)]
open(report, "w").write("# Long words\\n\\n" + "\\n".join(f"- {w}" for w in sorted(set(words))) + "\\n")
open(count, "w").write(str(len(words)))
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
        image="python:3.11-slim",
        command=["python3", "-c", COUNT_SCRIPT],
        args=[InputPath("source"), InputValue("min_len"), OutputPath("report"), OutputPath("count")],
        inputs={"source": text.outputs["text"], "min_len": min_len},
        outputs={"report": Markdown, "count": int},
    )
    summarize(report=counted.outputs["report"], count=counted.outputs["count"])


if __name__ == "__main__":  # `python examples/container_pipeline.py`; importing the file runs nothing
    from stackhop import run

    run(container_pipeline)
