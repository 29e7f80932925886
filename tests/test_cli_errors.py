"""Bad input through the real command line: one clear error line, non-zero exit, no outputs."""
from __future__ import annotations

import pytest

from conftest import run_cli

pytestmark = pytest.mark.e2e


def error_lines(stderr: str) -> list[str]:
    return [l for l in stderr.splitlines() if "error" in l.lower()]


@pytest.mark.parametrize("override, needle", [
    ("model=resnet9000", "Could not find 'model/resnet9000'"),
    ("data=imagenet22k", "Could not find 'data/imagenet22k'"),
])
def test_unknown_group_option(tmp_path, override, needle):
    res = run_cli("train", override, f"paths.root={tmp_path}", cwd=tmp_path)
    assert res.returncode != 0
    assert needle in res.stderr
    assert "Available options" in res.stderr  # Hydra lists what exists
    assert not (tmp_path / "data").exists()


def test_wrong_type_in_override(tmp_path):
    res = run_cli("train", "train.max_epochs=lots", f"paths.root={tmp_path}", "data=digits", "experiment=tiny",
                  "tracking=none", cwd=tmp_path)
    assert res.returncode == 2
    lines = error_lines(res.stderr)
    assert lines == ["reptopo.train: error: config key train.max_epochs: "
                     "Value 'lots' of type 'str' could not be converted to Integer"], res.stderr
    assert not (tmp_path / "data").exists()


def test_missing_data_files(tmp_path):
    res = run_cli("train", "experiment=tiny", f"data.root={tmp_path}/no-such-dir", f"paths.root={tmp_path}",
                  cwd=tmp_path)
    assert res.returncode == 2
    lines = error_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("reptopo.train: error: Fashion-MNIST data root not found:")
    assert "apt-get install dataset-fashion-mnist" in lines[0]
    assert not (tmp_path / "data/train/resnet_small-fashion_mnist").exists()


def test_probe_naming_a_missing_layer(trained_digits, tmp_path):
    root, cfg, _, _ = trained_digits
    res = run_cli("activations", "experiment=tiny", "data=digits", f"paths.root={root}", "run_name=badprobe",
                  f"paths.train_dir={root}/data/train/{cfg.run_name}", "probe.strategy=names",
                  "probe.layers=[layer1.0,layer7.3]", cwd=tmp_path)
    assert res.returncode == 2
    lines = error_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    assert "['layer7.3']" in lines[0] and "resnet_small" in lines[0]
    assert not (root / "data/activations/badprobe").exists()
