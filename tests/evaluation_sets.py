"""Synthetic evaluation sets with known properties, as CSV bytes."""

import numpy as np
import pandas as pd


def binary_set(
    rows: int = 400,
    *,
    seed: int = 7,
    rates: dict[str, float] | None = None,
    accuracy: float = 0.85,
    with_scores: bool = True,
) -> pd.DataFrame:
    """Labels, predictions that agree `accuracy` of the time, and a `group` column whose
    groups' selection rates follow `rates` (equal rates when not given)."""
    rng = np.random.default_rng(seed)
    rates = rates or {"a": 0.5, "b": 0.5}
    groups = rng.choice(list(rates), size=rows)
    selection = np.array([rates[g] for g in groups])
    y_pred = (rng.random(rows) < selection).astype(int)
    agree = rng.random(rows) < accuracy
    y_true = np.where(agree, y_pred, 1 - y_pred)
    frame = pd.DataFrame({"y_true": y_true, "y_pred": y_pred, "group": groups})
    if with_scores:
        noise = rng.random(rows) * 0.5
        frame["score"] = np.clip(np.where(y_pred == 1, 0.5 + noise, 0.5 - noise), 0, 1)
    frame["sex"] = rng.choice(["f", "m"], size=rows)
    return frame


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()
