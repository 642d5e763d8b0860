"""Trivial pipelines for the benchmarks: a 100-step chain and 64 independent steps."""

from __future__ import annotations

from stackhop import pipeline, step


@step
def first() -> int:
    return 0


@step
def add_one(x: int) -> int:
    return x + 1


@step
def noop(i: int) -> int:
    return i


def make_chain(n: int):
    @pipeline(name=f"chain-{n}")
    def chain():
        value = first().output
        for _ in range(n - 1):
            value = add_one(x=value).output

    return chain


def make_fan(n: int):
    @pipeline(name=f"fan-{n}")
    def fan():
        for i in range(n):
            noop(i=i)

    return fan


chain_100 = make_chain(100)
fan_64 = make_fan(64)


chain_1000 = make_chain(1000)
