"""bench/throughput.py's options and summary lines (the timings themselves are never part of the suite)."""
from __future__ import annotations

import argparse

import pytest

from bench.throughput import precision_ratios, precisions


def test_precision_accepts_several_comma_separated():
    assert precisions("fp32,bf16") == ["fp32", "bf16"]
    assert precisions(" auto ") == ["auto"]
    with pytest.raises(argparse.ArgumentTypeError, match="xx: use auto, fp32, bf16, fp16"):
        precisions("fp32,xx")
    with pytest.raises(argparse.ArgumentTypeError):
        precisions(",")


def test_bf16_and_fp32_rows_are_compared_per_model():
    rows = [{"model": "ResNet-20", "precision": "fp32", "engine_img_s": 200.0},
            {"model": "ResNet-20", "precision": "bf16", "engine_img_s": 100.0},
            {"model": "ResNet-56", "precision": "bf16", "engine_img_s": 50.0}]
    assert precision_ratios(rows) == ["ResNet-20: engine bf16 0.50x engine fp32"]
