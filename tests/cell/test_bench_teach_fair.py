"""Issue 14, item 5: the teach-once incumbent is taught on one real pair of the style, with its own hidden
variation (as an engineer would teach it), in both worlds: not on the nominal design, not on a bench pair."""

from __future__ import annotations

import numpy as np


def test_world1_teach_once_is_taught_on_a_real_pair_not_the_nominal() -> None:
    from gluecell.cell.bench.deformation import _taught
    from gluecell.cell.sim.references import TAUGHT_SEED, taught_world_pair
    from gluecell.core.types import WorkItem
    from gluecell.datasets.world.pair import nominal_params

    item = WorkItem(item_id="x", style="sneaker", size_eu=42, side="left")
    taught = _taught({}, item)
    assert taught is not None
    pairs = [taught_world_pair(item, s) for s in range(TAUGHT_SEED, TAUGHT_SEED + 3)]
    used = [p for p in pairs if np.array_equal(p.bite_line, taught.bite_line)]
    assert len(used) == 1  # the line the teacher marked is one of the taught pairs' true lines
    real, nominal = used[0].params, nominal_params(item.style, item.size_eu, item.side)
    # its hidden variation is its own: material stiffness, leather, sole placement on the upper
    assert real.youngs_modulus_pa != nominal.youngs_modulus_pa
    assert real.upper_thickness_m != nominal.upper_thickness_m
    assert real.sole_offset_m != nominal.sole_offset_m == (0.0, 0.0)
    assert (real.style, real.size_eu, real.side) == ("sneaker", 42.0, "left")


def test_world2_teach_once_is_taught_on_a_real_world2_pair() -> None:
    from gluecell.cell.bench.worlds import taught_world2
    from gluecell.cell.sim.references import TAUGHT_SEED
    from gluecell.core.types import WorkItem
    from gluecell.datasets.world2.config import STYLES
    from gluecell.datasets.world2.pair import make_pair2

    style = next(iter(STYLES))
    item = WorkItem(item_id="y", style=style, size_eu=float(STYLES[style].sizes[0]), side="right")
    taught = taught_world2(item, 9001)
    assert taught is not None
    # the teacher's pair: the first seed from TAUGHT_SEED whose item draw has this size and side (never the bench's
    # seed), built with its own hidden variation
    for s in range(TAUGHT_SEED, TAUGHT_SEED + 400):
        r = np.random.default_rng(np.random.SeedSequence(s).spawn(5)[0])
        if float(STYLES[style].sizes[int(r.integers(len(STYLES[style].sizes)))]) == item.size_eu and r.random() >= 0.5:
            break
    pair = make_pair2(np.random.SeedSequence(s), style=style)
    assert np.array_equal(taught.bite_line, pair.bite_line)
    att, sole = pair.params["attach"], pair.params["sole"]
    assert (att["dx_m"], att["dy_m"], att["yaw_rad"]) != (0.0, 0.0, 0.0)
    assert pair.item.side == "right" and pair.item.size_eu == item.size_eu and sole
