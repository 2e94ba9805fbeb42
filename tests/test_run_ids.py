import pytest

from flopsfit.run_ids import format_run_id, parse_run_id


@pytest.mark.parametrize(
  "budget, shape, seed",
  [
    (2e11, {"d_model": 32, "n_layers": 2}, 0),
    (1.5e12, {"n_layers": 12, "d_model": 768}, 3),
    (3e9, {"vocab": 16}, 1),
  ],
)
def test_run_ids_parse_back(budget, shape, seed):
  run_id = format_run_id(budget, shape, seed)
  assert parse_run_id(run_id) == {"budget_flops": budget, "shape": shape, "seed": seed}


def test_run_id_is_readable():
  assert format_run_id(2e11, {"n_layers": 2, "d_model": 32}, 0) == "c2e+11-d32-L2-s0"
  with pytest.raises(ValueError, match="expected 'c<budget>-<shape>-s<seed>'"):
    parse_run_id("d32-L2")
