"""What really happened in the simulated cell: the world sprays the planned paths and measures the result.

A real cell learns this from inspection; the simulated cell plays the physics (the world's truth-side
spray model) and reports it, so the demo and the bench can show errors against truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MARKING_NOISE_M", "marked_bite_line", "spray_outcome"]


def spray_outcome(truth: dict[str, Any], paths: Any, seed: int) -> dict[str, dict[str, float]]:
    """Spray ``paths`` (a Plan or SprayPaths) on the true parts and score them (see the world's spray model)."""
    from gluecell.datasets.world.spray import spray_and_score

    return spray_and_score(truth, paths, np.random.default_rng(seed))


#: 1-sigma noise of a bite line marked by hand on the lasted upper (pen line on leather, digitiser), metres.
MARKING_NOISE_M = 0.3e-3


def marked_bite_line(truth: dict[str, Any], seed: int, noise_m: float = MARKING_NOISE_M) -> np.ndarray:
    """A bite line as an operator marks it on the pair: the true line with smooth marking noise.

    Plants without a deformation model mark the line on each pair by hand (``gluecell plan --bite-line``);
    the simulated cell plays that operator. The noise is smooth along the line (a pen wanders over
    centimetres), applied across it in the plane normal to the line's tangent.

    Returns:
        (m, 3) float64 metres, base_link.
    """
    line = np.asarray(truth["bite_line"], dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = len(line)
    k = np.fft.rfftfreq(n, d=1.0 / n)
    spectrum = (rng.normal(size=(2, len(k))) + 1j * rng.normal(size=(2, len(k)))) * np.exp(-(k / 12.0) ** 2)
    spectrum[:, 0] = 0.0
    wobble = np.fft.irfft(spectrum, n=n, axis=1)
    wobble *= noise_m / np.maximum(wobble.std(axis=1, keepdims=True), 1e-12)
    tangent = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    up = np.array([0.0, 0.0, 1.0])
    side = np.cross(tangent, up)
    side /= np.maximum(np.linalg.norm(side, axis=1, keepdims=True), 1e-12)
    vertical = np.cross(side, tangent)
    return line + wobble[0, :, None] * vertical + wobble[1, :, None] * 0.2 * side
