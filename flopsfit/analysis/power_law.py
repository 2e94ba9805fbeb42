"""Least-squares power laws y = k·x^a in log space, one or many (weighted) at once."""

import numpy as np


def fit_batched(
  log_x_BxP: np.ndarray, log_y_BxP: np.ndarray, weight_BxP: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Weighted fits of log y = log k + a·log x, one per row; returns (log k [B], a [B]).

  A row with fewer than two distinct x of positive weight gives NaN.
  """
  w = np.where(np.isfinite(log_y_BxP) & np.isfinite(log_x_BxP), weight_BxP, 0.0)
  x = np.where(w > 0, log_x_BxP, 0.0)
  y = np.where(w > 0, log_y_BxP, 0.0)
  sw = w.sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    mx = (w * x).sum(axis=1) / sw
    my = (w * y).sum(axis=1) / sw
    dx = np.where(w > 0, x - mx[:, None], 0.0)
    sxx = (w * dx * dx).sum(axis=1)
    sxy = (w * dx * (y - my[:, None])).sum(axis=1)
    slope = sxy / sxx
  degenerate = ~(sxx > 1e-12 * np.maximum(1.0, (w * x * x).sum(axis=1)))
  slope = np.where(degenerate, np.nan, slope)
  intercept = np.where(degenerate, np.nan, my - slope * mx)
  return intercept, slope


def fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
  """Unweighted fit of y = k·x^a; returns (k, a)."""
  log_k, a = fit_batched(np.log(x)[None], np.log(y)[None], np.ones((1, np.size(x))))
  return float(np.exp(log_k[0])), float(a[0])
