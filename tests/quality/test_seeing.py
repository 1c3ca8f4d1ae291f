"""The QA network that must see the glue: blind geometry channels, geometry dropout, focal + dice loss."""

import math

import numpy as np
import pytest
import torch

from gluecell.quality.losses import focal_dice_loss, focal_loss, make_loss, soft_dice_loss
from gluecell.quality.model import load_model
from gluecell.quality.net import GEOMETRY_CHANNELS, N_IN, build_unet
from gluecell.quality.train import TrainConfig, _batch, train

TINY = {"batch": 2, "crop": 64, "width": 4, "threads": 1}


def _x(seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(2, N_IN, 32, 32)).astype(np.float32))


def test_blind_network_ignores_the_geometry_channels_and_sees_the_rest():
    torch.manual_seed(0)
    net = build_unet(4, 2, blind=GEOMETRY_CHANNELS).eval()
    x = _x()
    y = x.clone()
    y[:, list(GEOMETRY_CHANNELS)] = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 2, 32, 32)) * 50).float()
    with torch.no_grad():
        assert torch.equal(net(x), net(y))  # any signed distance gives the same output
        z = x.clone()
        z[:, 0] += 1.0  # the image does matter
        assert (net(z) - net(x)).abs().max() > 1e-3
    torch.manual_seed(0)
    seeing = build_unet(4, 2).eval()
    with torch.no_grad():
        assert (seeing(y) - seeing(x)).abs().max() > 1e-3  # the plain network does read them
    with pytest.raises(ValueError, match="outside"):
        build_unet(4, 2, blind=(N_IN,))


def test_focal_and_dice_on_known_values():
    logits = torch.tensor([0.0, 2.0, -1.0]).view(1, 3, 1, 1)
    y = torch.tensor([1.0, 0.0, 1.0]).view(1, 3, 1, 1)
    p = [0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))]
    pt = [p[0], 1 - p[1], p[2]]
    at = [0.75, 0.25, 0.75]
    want = np.mean([a * (1 - q) ** 2 * -math.log(q) for a, q in zip(at, pt)])
    assert float(focal_loss(logits, y)) == pytest.approx(want, rel=1e-5)
    # gamma 0, alpha 0.5: half the plain BCE
    bce = float(torch.nn.functional.binary_cross_entropy_with_logits(logits, y))
    assert float(focal_loss(logits, y, gamma=0.0, alpha=0.5)) == pytest.approx(bce / 2, rel=1e-6)
    # dice per channel (eps 1): (2 p y + 1) / (p + y + 1)
    want_d = np.mean([1 - (2 * p[0] + 1) / (p[0] + 2), 1 - 1 / (p[1] + 1), 1 - (2 * p[2] + 1) / (p[2] + 2)])
    assert float(soft_dice_loss(logits, y)) == pytest.approx(want_d, rel=1e-5)
    # a perfect, confident prediction costs ~nothing; the defect terms dominate a missed defect
    y5 = torch.zeros(2, 5, 8, 8)
    y5[:, 0, :4] = 1
    y5[:, 1, 2:4, 2:4] = 1
    good = (y5 * 2 - 1) * 20
    assert float(focal_dice_loss(good, y5)) < 1e-3
    missed = good.clone()
    missed[:, 1] = -20
    assert float(focal_dice_loss(missed, y5)) > 0.9
    assert float(make_loss("bce", 8.0, 4)(good, y5)) < 1e-6
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("mse", 1.0, 4)


def test_geometry_dropout_zeroes_the_geometry_channels_of_crops(tiny_data):
    from gluecell.quality.data import load_split, open_data

    d = load_split(open_data(tiny_data), "train")
    assert np.abs(d.x[:, list(GEOMETRY_CHANNELS)]).max() > 0  # there is geometry to drop
    rng = np.random.default_rng(0)
    x, _ = _batch(d, None, TrainConfig(geom_dropout=1.0, batch=4, crop=64), rng)
    assert float(x[:, list(GEOMETRY_CHANNELS)].abs().max()) == 0.0 and float(x[:, :3].abs().max()) > 0
    x, _ = _batch(d, None, TrainConfig(geom_dropout=0.0, batch=4, crop=64, defect_crop=1.0), rng)
    assert float(x[:, list(GEOMETRY_CHANNELS)].abs().max()) > 0


def test_blind_focal_training_round_trips_and_resumes(tiny_data, tmp_path):
    cfg = TrainConfig(epochs=1, blind=True, loss="focal_dice", defect_crop=0.9, **TINY)
    rec = train(tiny_data, tmp_path / "r", cfg)
    assert rec["arch"]["blind"] == list(GEOMETRY_CHANNELS) and np.isfinite(rec["history"][0]["val_loss"])
    m = load_model(tmp_path / "r" / "model.pt")
    assert m.net.blind == GEOMETRY_CHANNELS and m.record["config"]["loss"] == "focal_dice"
    x = _x(3)
    y = x.clone()
    y[:, list(GEOMETRY_CHANNELS)] += 7.0
    with torch.no_grad():
        assert torch.equal(m.net(x), m.net(y))
    rec2 = train(tiny_data, tmp_path / "r", TrainConfig(epochs=2, blind=True, loss="focal_dice", defect_crop=0.9,
                                                        **TINY), resume=True)  # fmt: skip
    assert [h["epoch"] for h in rec2["history"]] == [1, 2]


def test_bad_options_are_refused():
    from gluecell.core.errors import ConfigError

    for kw in ({"geom_dropout": 1.5}, {"loss": "l2"}, {"defect_crop": -0.1}):
        with pytest.raises(ConfigError):
            TrainConfig(**kw)


def test_eval_reports_how_much_glue_beyond_the_line_is_seen():
    from gluecell.quality.data import SplitData
    from gluecell.quality.evaluate import _extras

    h = w = 8
    x = np.zeros((1, N_IN, h, w), dtype=np.float16)
    x[0, 4] = 1.0  # part everywhere
    x[0, 5] = np.where(np.arange(h)[:, None] < 4, -0.2, 0.2) * np.ones((1, w))  # rows 0-3 beyond the predicted line
    y = np.zeros((1, 5, h, w), dtype=np.uint8)
    y[0, 0, 2:] = 1  # glue from row 2 down: rows 2-3 beyond the line
    y[0, 2, 2:4] = 1  # ... labelled above the true line
    probs = np.zeros((1, 5, h, w), dtype=np.float32)
    probs[0, 0, 3:] = 0.9  # the network sees the glue from row 3: half of the beyond-line glue
    d = SplitData(x=x, y=y, labels=np.zeros((1, 4), bool), ids=["p/v"], entries=[{"overspray_mm": 0.0}])
    e = _extras(d, probs)
    assert e["glue_seen_above"] == pytest.approx(0.5) and e["glue_seen_beyond_line"] == pytest.approx(0.5)
    assert e["glue_iou"] == pytest.approx(40 / 48)
