"""Layer responses (Fig. 7): the std of every 3x3 layer's output after BN, from hooks, against a direct computation."""
from __future__ import annotations

import json
import os

import pytest
import torch

from cli.main import main
from core.results.responses import FILE_NAME, layer_response_std, layer_responses, response_layers
from core.store.runs import RunStore
from core.train.models import cifar_resnet
from core.train.trainer import train_run
from tests.conftest import tiny_config


def test_std_equals_a_direct_computation_with_forward_hooks():
    torch.manual_seed(0)
    model = cifar_resnet(8, "B", width=4)
    with torch.no_grad():                      # give the batch norms running statistics that are not 0/1
        for _ in range(3):
            model(torch.randn(16, 3, 32, 32) * 2 + 0.5)
    batches = [torch.randn(10, 3, 32, 32) for _ in range(3)]
    got = layer_response_std(model, [(x, torch.zeros(10)) for x in batches])

    # the 3x3 layers of a depth-8 net: the stem and two per block; option B's 1x1 projection BN is not one
    names = ["bn1", "layer1.0.bn1", "layer1.0.bn2", "layer2.0.bn1", "layer2.0.bn2", "layer3.0.bn1", "layer3.0.bn2"]
    assert [g["name"] for g in got] == names and [g["index"] for g in got] == list(range(1, 8))
    modules = dict(model.named_modules())
    outs: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: outs[n].append(o.detach().clone()))
             for n in names]
    model.eval()
    with torch.no_grad():
        for x in batches:
            model(x)
    for h in hooks:
        h.remove()
    direct = [torch.cat([o.flatten() for o in outs[n]]).double().std(correction=0).item() for n in names]
    assert [g["std"] for g in got] == pytest.approx(direct, rel=1e-9)
    # bn2 of a block is read before the shortcut is added: its std differs from the block's output
    block_out = []
    h = modules["layer1.0"].register_forward_hook(lambda m, i, o: block_out.append(o))
    with torch.no_grad():
        model(batches[0])
    h.remove()
    assert not torch.allclose(block_out[0], outs["layer1.0.bn2"][0])
    assert model.training is False and not any(m._forward_hooks for _, m in response_layers(model))


def test_run_responses_are_computed_once_per_checkpoint(tmp_path, monkeypatch, capsys):
    store = RunStore(tmp_path / "runs")
    run, state = train_run(store, tiny_config(epochs=1, max_train_images=64, max_test_images=64,
                                                          channels_last="off"))
    assert state == "finished"
    data = layer_responses(run, device="cpu")
    assert data["images"] == 64 and len(data["layers"]) == 7 and data["epoch"] == 1
    assert json.loads((run.path / FILE_NAME).read_text())["layers"] == data["layers"]

    import core.results.responses as R

    def must_not_run(*a, **k):
        raise AssertionError("recomputed although the checkpoint did not change")

    monkeypatch.setattr(R, "layer_response_std", must_not_run)
    assert layer_responses(run)["layers"] == data["layers"]
    assert main(["eval", run.id, "--layer-responses", "--runs-dir", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert f"layer responses of {run.id}" in out and "layer2.0.bn2" in out
    monkeypatch.undo()
    st = run.checkpoint_path.stat()
    os.utime(run.checkpoint_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))   # as a later checkpoint would
    assert R.read_layer_responses(run) is None
    again = layer_responses(run, device="cpu")
    assert again["checkpoint"] != data["checkpoint"]
    assert [x["std"] for x in again["layers"]] == [x["std"] for x in data["layers"]]


@pytest.mark.parametrize("arch,depth", [("preact", 8), ("wrn", 10)])
def test_pre_activation_runs_say_why_fig7_does_not_apply(tmp_path, capsys, arch, depth):
    store = RunStore(tmp_path / "runs")
    run = store.create(tiny_config(arch=arch, depth=depth))
    run.checkpoint_path.write_bytes(b"not read: the architecture decides first")
    assert main(["eval", run.id, "--layer-responses", "--runs-dir", str(store.root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"a {arch} net normalises before its convolutions" in err
    assert err.count("\n") == 1 and not (run.path / FILE_NAME).exists()


def test_eval_layer_responses_without_checkpoint_is_one_line(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    run = store.create(tiny_config())
    assert main(["eval", run.id, "--layer-responses", "--runs-dir", str(store.root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no checkpoint.pt yet" in err and err.count("\n") == 1


def test_a_report_whose_runs_data_is_gone_downloads_nothing_and_says_so_once(tmp_path, cifar_tiny, capsys,
                                                                              monkeypatch):
    # `report --all` over runs whose data folder had moved tried to download CIFAR-10 for each run (170 MB each
    # time it could) and printed the whole 'not found ... put the archive ...' paragraph once per run
    import shutil

    import torchvision.datasets.utils as tv_utils

    data = tmp_path / "data"
    shutil.copytree(cifar_tiny, data)
    store = RunStore(tmp_path / "runs")
    ids = []
    for seed in (1, 2):
        run, state = train_run(store, tiny_config(dataset="cifar10", data_dir=str(data), download=True, seed=seed,
                                                  epochs=1, max_train_images=64, max_test_images=40,
                                                  channels_last="off"))
        assert state == "finished"
        ids.append(run.id)
    shutil.rmtree(data)

    def no_download(*args, **kwargs):
        raise AssertionError("a report must not download a data set")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", no_download)
    assert main(["report", *ids, "--format", "md,png", "--out", str(tmp_path / "rep"),
                 "--runs-dir", str(store.root)]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "Fig. 7 leaves out" in line]
    assert len(notes) == 1 and all(i in notes[0] for i in ids) and "--data-dir" in notes[0], notes
    assert "a report must not download" not in notes[0] and len(notes[0]) < 400, notes
