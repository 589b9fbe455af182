"""Anny's phenotypes -> blendshape coefficients, in a handful of batched tensor operations.

Anny computes each phenotype's interpolation weights feature by feature in Python; the
body fit evaluates this on every iteration, where that per-feature overhead was most of
the keypoints-only forward's time. This module computes the same function (checked
against ``anny.models.phenotype.phenotype_blendshape_weights`` in the tests, values and
gradients) for all 26 phenotype variations at once:

- each interpolated feature has evenly spaced anchors; a value is clamped to their range,
  falls in the interval ``[a_{i-1}, a_i]`` with ``i`` = the number of anchors below it
  (clamped to ``1..n-1``, as Anny's left-sided search does), and weights the two anchors
  ``1 - alpha`` and ``alpha``;
- phenotypes hmrkit does not expose (cup size, firmness, race) keep Anny's defaults;
- each blendshape is the product of the (at most six) variations its mask names, gathered
  rather than multiplied densely over all 26, then projected on Anny's compact basis.
"""

from __future__ import annotations

import torch

from hmrkit.light_import import import_module_lightly

# Anny's table of phenotype variations, read without ``anny/__init__`` (which imports roma and
# with it torch._dynamo: over a second of ``hmrkit run``'s start-up, for a dict)
PHENOTYPE_VARIATIONS = import_module_lightly("anny.models.model_data").PHENOTYPE_VARIATIONS
RACES = ("african", "asian", "caucasian")


def make_phenotype_anchors(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Each interpolated phenotype's evenly spaced anchors, as ``anny.models.phenotype.make_phenotype_anchors``
    (the tests compare them): age from -1/3 to 1, the others from 0 to 1."""
    return {name: torch.linspace(-1 / 3 if name == "age" else 0.0, 1.0, len(variations), dtype=dtype)
            for name, variations in PHENOTYPE_VARIATIONS.items() if name != "race"}


class PhenotypeBasis(torch.nn.Module):
    def __init__(self, shape_names: tuple[str, ...], mask: torch.Tensor, projection: torch.Tensor):
        super().__init__()
        anchors = make_phenotype_anchors(torch.float64)
        feature, position, start, step, count, fixed = [], [], [], [], [], []
        for name, variations in PHENOTYPE_VARIATIONS.items():
            for k in range(len(variations)):
                if name == "race":
                    feature.append(-1)
                    fixed.append(1.0 / len(RACES))  # equal mix: Anny's default of 0.5 each, normalized
                    start.append(0.0), step.append(1.0), count.append(1)
                else:
                    a = anchors[name]
                    feature.append(shape_names.index(name) if name in shape_names else -1)
                    start.append(float(a[0])), step.append(float(a[1] - a[0])), count.append(len(a))
                    fixed.append(self._default_weight(k, a))
                position.append(k)
        # the interpolation constants stay float64 (not buffers, which .float() would round):
        # a value on an anchor must land in the same interval as in Anny
        self.feature = torch.tensor(feature)
        self.column = self.feature.clamp(min=0)  # the phenotype each variation reads (fixed ones: any)
        self.position = torch.tensor(position, dtype=torch.float64)
        self.start = torch.tensor(start, dtype=torch.float64)
        self.step = torch.tensor(step, dtype=torch.float64)
        self.last = torch.tensor(count, dtype=torch.float64) - 1
        self.fixed = torch.tensor(fixed, dtype=torch.float64)
        self.free = self.feature >= 0
        # each blendshape multiplies at most a few variations: gather just those (slot 26 = 1)
        used = mask.bool()
        gather = torch.full((used.shape[0], int(used.sum(1).max())), used.shape[1], dtype=torch.long)
        for k, row in enumerate(used):
            columns = torch.nonzero(row)[:, 0]
            gather[k, : len(columns)] = columns
        self.register_buffer("gather", gather, persistent=False)
        self.register_buffer("projection", projection, persistent=False)

    @staticmethod
    def _default_weight(k: int, anchors: torch.Tensor) -> float:
        """Weight of anchor ``k`` for the default value 0.5 (exactly on or between anchors)."""
        a = anchors.tolist()
        value = min(max(0.5, a[0]), a[-1])
        i = min(max(sum(x < value for x in a), 1), len(a) - 1)
        alpha = (value - a[i - 1]) / (a[i] - a[i - 1])
        return (1 - alpha) if k == i - 1 else alpha if k == i else 0.0

    def forward(self, shape: torch.Tensor) -> torch.Tensor:
        """(B, S) phenotypes -> (B, K) coefficients of the compact blendshape basis."""
        dtype, device = shape.dtype, shape.device
        f64 = {"device": device, "dtype": torch.float64}
        start, step, last = self.start.to(**f64), self.step.to(**f64), self.last.to(**f64)
        value = shape.to(torch.float64).index_select(1, self.column.to(device))  # (B, 26)
        t = (value - start) / step
        t = torch.where(t < 0, torch.zeros_like(t), t)
        t = torch.where(t > last, last.expand_as(t), t)  # (not minimum: that halves the slope at a tie)
        interval = torch.ceil(t.detach()).clamp(min=1).minimum(last)  # left-sided search, clamped
        alpha = t - (interval - 1)
        k = self.position.to(**f64)
        weights = torch.where(k == interval, alpha, torch.where(k == interval - 1, 1 - alpha, torch.zeros_like(alpha)))
        weights = torch.where(self.free.to(device), weights, self.fixed.to(**f64)).to(dtype)
        weights = torch.cat([weights, torch.ones_like(weights[:, :1])], dim=1)
        gathered = weights.index_select(1, self.gather.flatten()).reshape(weights.shape[0], *self.gather.shape)
        return gathered.prod(-1) @ self.projection.to(dtype)
