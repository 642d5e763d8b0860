"""The seed tutorial's pipeline: load data -> train -> evaluate -> deploy only if accuracy passes.

    stackhop run examples/training_pipeline.py                      # deploys
    stackhop run examples/training_pipeline.py -p min_accuracy=0.999  # deploy is skipped

scikit-learn is imported inside the steps, so tracing the pipeline needs only stackhop.
"""

from __future__ import annotations

from stackhop import Dataset, If, Input, Metrics, Model, Output, pipeline, step


@step
def load_data(data: Output[Dataset], n_samples: int = 1000, seed: int = 42) -> int:
    """Generate a small classification dataset as CSV (no download needed)."""
    import csv

    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples, n_features=10, n_informative=6, n_redundant=2, random_state=seed
    )
    with open(data.path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"f{i}" for i in range(X.shape[1])] + ["target"])
        for row, label in zip(X, y):
            writer.writerow([f"{v:.6f}" for v in row] + [int(label)])
    data.metadata["rows"] = n_samples
    return n_samples


def _split(path: str, seed: int):
    import numpy as np
    from sklearn.model_selection import train_test_split

    table = np.loadtxt(path, delimiter=",", skiprows=1)
    X, y = table[:, :-1], table[:, -1].astype(int)
    return train_test_split(X, y, test_size=0.2, random_state=seed)


@step(resources={"cpu": "1", "memory": "1Gi"})
def train_model(dataset: Input[Dataset], model: Output[Model], metrics: Output[Metrics], n_estimators: int = 100) -> float:
    import pickle

    from sklearn.ensemble import RandomForestClassifier

    X_train, X_test, y_train, y_test = _split(dataset.path, seed=42)
    clf = RandomForestClassifier(n_estimators=n_estimators, random_state=42)
    clf.fit(X_train, y_train)
    train_accuracy = float(clf.score(X_train, y_train))
    metrics.log_metric("train_accuracy", train_accuracy)
    with open(model.path, "wb") as f:
        pickle.dump(clf, f)
    model.metadata["framework"] = "scikit-learn"
    return train_accuracy


@step
def evaluate_model(model: Input[Model], test_data: Input[Dataset], metrics: Output[Metrics], min_accuracy: float = 0.85) -> str:
    """Score on the held-out split; say "yes" when the model is good enough to deploy."""
    import pickle

    from sklearn.metrics import accuracy_score, f1_score

    _, X_test, _, y_test = _split(test_data.path, seed=42)
    with open(model.path, "rb") as f:
        clf = pickle.load(f)
    preds = clf.predict(X_test)
    accuracy = float(accuracy_score(y_test, preds))
    metrics.log_metric("accuracy", accuracy)
    metrics.log_metric("f1", float(f1_score(y_test, preds)))
    print(f"accuracy={accuracy:.4f} threshold={min_accuracy}")
    return "yes" if accuracy >= min_accuracy else "no"


@step
def deploy_model(model: Input[Model], endpoint_name: str = "production", deploy_dir: str = ".stackhop/deployments") -> str:
    """"Deploy" by copying the model to a local serving folder."""
    import os
    import shutil

    target = os.path.join(deploy_dir, endpoint_name)
    os.makedirs(target, exist_ok=True)
    shutil.copyfile(model.path, os.path.join(target, "model.pkl"))
    print(f"Model deployed to {target}")
    return os.path.abspath(target)


@pipeline(description="Train, evaluate, and conditionally deploy a classifier")
def training_pipeline(
    min_accuracy: float = 0.85,
    n_estimators: int = 100,
    deploy_endpoint: str = "production",
    deploy_dir: str = ".stackhop/deployments",
):
    data = load_data()
    trained = train_model(dataset=data.outputs["data"], n_estimators=n_estimators)
    evaluated = evaluate_model(
        model=trained.outputs["model"], test_data=data.outputs["data"], min_accuracy=min_accuracy
    )
    with If(evaluated.outputs["output"] == "yes"):
        deploy_model(model=trained.outputs["model"], endpoint_name=deploy_endpoint, deploy_dir=deploy_dir)


if __name__ == "__main__":  # `python examples/training_pipeline.py`; importing the file (as `stackhop run` does) runs nothing
    from stackhop import run

    run(training_pipeline)
