"""Optional: the fitter on the 245 published Chinchilla runs (Besiroglu et al. 2024 refit).

Reads ../shared/data/chinchilla-epoch/svg_extracted_data.csv when it exists (not part of the
repository: no licence) and is skipped otherwise.
"""

import os

import numpy as np
import pytest

from flopsfit.analysis import AnalysisOptions, approach3, load_csv

PATH = os.path.join(
  os.path.dirname(__file__),
  "..",
  "..",
  "..",
  "shared",
  "data",
  "chinchilla-epoch",
  "svg_extracted_data.csv",
)


@pytest.mark.skipif(not os.path.exists(PATH), reason="Chinchilla reference data not present")
def test_reproduces_the_published_refit():
  """docs/analysis.md numbers: objective 0.0010183 at E 1.8172, α 0.3473, β 0.3672 (240 runs)."""
  table = load_csv(
    PATH,
    AnalysisOptions(max_loss=3.40593),
    n_column="Model Size",
    c_column="Training FLOP",
    loss_column="loss",
  )
  assert table.size == 240 and len(table.excluded) == 5
  np.testing.assert_allclose(table.D, table.C / (6 * table.N))
  fit = approach3.fit_grid(approach3.Data.from_arrays(table.N, table.D, table.loss), 1e-3)
  p = approach3.named(fit.theta)
  assert fit.objective == pytest.approx(0.0010183, rel=1e-4)
  assert p["E"] == pytest.approx(1.8172, abs=5e-4)
  assert p["alpha"] == pytest.approx(0.3473, abs=5e-4)
  assert p["beta"] == pytest.approx(0.3672, abs=5e-4)
  assert p["a"] == pytest.approx(0.513, abs=2e-3)
