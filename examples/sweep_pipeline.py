"""A hyperparameter sweep: the configs are made at run time, trained in parallel, and the best is deployed.

    stackhop run examples/sweep_pipeline.py
    stackhop run examples/sweep_pipeline.py -p grid_size=6 -p target=prod

`ParallelFor(configs.output)` runs `train` once per config the first step returned,
`Collected(trained.output)` hands every score to `pick_best` in iteration order, an
`If`/`Elif`/`Else` chain decides where the model goes, and the model is the pipeline's output
(`run(...).outputs["output"]`). Standard library only, so it runs anywhere stackhop does.
"""

from __future__ import annotations

import json
import random

from stackhop import Collected, Elif, Else, If, Model, Output, ParallelFor, pipeline, step


def _data(seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    xs = [rng.uniform(-1, 1) for _ in range(200)]
    return xs, [3.0 * x + 0.5 + rng.gauss(0, 0.1) for x in xs]


def _fit(xs: list[float], ys: list[float], lr: float, epochs: int) -> tuple[float, float]:
    w = b = 0.0
    for _ in range(epochs):
        for x, y in zip(xs, ys):
            err = w * x + b - y
            w, b = w - lr * err * x, b - lr * err
    return w, b


@step
def make_configs(grid_size: int) -> list[dict]:
    """Decided when the run starts; it could as well come from a search service or an earlier run."""
    return [{"lr": 0.0025 * 2**i, "epochs": 2 + 2 * (i % 2)} for i in range(grid_size)]


@step
def train(lr: float, epochs: int, seed: int) -> float:
    xs, ys = _data(seed)
    w, b = _fit(xs[:150], ys[:150], lr, epochs)
    mse = sum((w * x + b - y) ** 2 for x, y in zip(xs[150:], ys[150:])) / 50
    return round(1.0 / (1.0 + mse), 4)


@step
def pick_best(scores: list[float], configs: list[dict]) -> dict:
    best = max(range(len(scores)), key=scores.__getitem__)
    return {**configs[best], "score": scores[best], "seen": scores}


@step
def fit_final(config: dict, seed: int, model: Output[Model]) -> float:
    xs, ys = _data(seed)
    w, b = _fit(xs, ys, config["lr"], config["epochs"])
    with open(model.path, "w") as f:
        json.dump({"w": round(w, 4), "b": round(b, 4), "lr": config["lr"], "epochs": config["epochs"]}, f)
    return config["score"]


@step
def deploy(where: str, score: float) -> str:
    print(f"deploying the model (score {score}) to {where}")
    return where


@pipeline
def sweep(grid_size: int = 4, seed: int = 7, target: str = "staging"):
    configs = make_configs(grid_size=grid_size)
    with ParallelFor(configs.output, parallelism=2) as config:
        trained = train(lr=config.lr, epochs=config.epochs, seed=seed)
    best = pick_best(scores=Collected(trained.output), configs=configs.output)
    final = fit_final(config=best.output, seed=seed)
    with If(target == "prod"):
        deploy(where="prod", score=final.output).set_name("to-prod")
    with Elif(target == "staging"):
        deploy(where="staging", score=final.output).set_name("to-staging")
    with Else():
        deploy(where="nowhere", score=final.output).set_name("hold")
    return final.outputs["model"]
