"""PyTorch (eager) reference of the built-in GPT's train step, for benchmarks/step_throughput.py.

  python benchmarks/torch_reference.py [--steps=5] [--json]

The same architecture and step as flopsfit's GPT at the reference shape: d256, 4 layers,
4 heads of 64, rotary positions, pre-norm RMSNorm, SwiGLU hidden 688, untied head, vocab 512,
seq 256, batch 16, f32; AdamW (b2 0.95, weight decay 0.1) with gradient clipping at 1.0.
PyTorch is not a flopsfit dependency: without it this prints a message and exits 0.
"""

import argparse
import json
import math
import os
import sys
import time

SHAPE = dict(d_model=256, n_layers=4, head_dim=64, hidden=688, vocab=512, seq=256, batch=16)


def build(torch, d_model, n_layers, head_dim, hidden, vocab):
  nn, F = torch.nn, torch.nn.functional

  class Block(nn.Module):
    def __init__(self):
      super().__init__()
      self.attn_norm, self.mlp_norm = nn.RMSNorm(d_model, eps=1e-6), nn.RMSNorm(d_model, eps=1e-6)
      self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
      self.out = nn.Linear(d_model, d_model, bias=False)
      self.up = nn.Linear(d_model, 2 * hidden, bias=False)
      self.down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x, cos, sin):
      b, t, d = x.shape
      q, k, v = self.qkv(self.attn_norm(x)).view(b, t, 3, d // head_dim, head_dim).unbind(2)
      q, k, v = (rotate(q, cos, sin), rotate(k, cos, sin), v)
      y = F.scaled_dot_product_attention(*(z.transpose(1, 2) for z in (q, k, v)), is_causal=True)
      x = x + self.out(y.transpose(1, 2).reshape(b, t, d))
      gate, value = self.up(self.mlp_norm(x)).chunk(2, dim=-1)
      return x + self.down(F.silu(gate) * value)

  def rotate(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

  class GPT(nn.Module):
    def __init__(self):
      super().__init__()
      self.embed = nn.Embedding(vocab, d_model)
      self.blocks = nn.ModuleList(Block() for _ in range(n_layers))
      self.final_norm = nn.RMSNorm(d_model, eps=1e-6)
      self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, tokens):
      t, half = tokens.shape[1], head_dim // 2
      freq = 1.0 / (10_000.0 ** (torch.arange(half, dtype=torch.float32) / half))
      angle = torch.arange(t, dtype=torch.float32)[:, None] * freq[None, :]
      cos, sin = angle.cos()[None, :, None, :], angle.sin()[None, :, None, :]
      x = self.embed(tokens)
      for block in self.blocks:
        x = block(x, cos, sin)
      return self.head(self.final_norm(x))

  return GPT()


def tokens_per_second(steps: int = 5, threads: int = 0, **overrides) -> dict:
  """Times `steps` eager train steps (after 2 warm-up steps); the best step wins."""
  import torch

  shape = {**SHAPE, **overrides}
  torch.manual_seed(0)
  torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
  model = build(
    torch, shape["d_model"], shape["n_layers"], shape["head_dim"], shape["hidden"], shape["vocab"]
  )
  decay = [p for p in model.parameters() if p.ndim >= 2]
  other = [p for p in model.parameters() if p.ndim < 2]
  optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
    lr=1e-3,
    betas=(0.9, 0.95),
    eps=1e-8,
  )
  tokens = torch.randint(0, shape["vocab"], (shape["batch"], shape["seq"]))

  def step():
    logits = model(tokens)
    loss = torch.nn.functional.cross_entropy(
      logits[:, :-1].reshape(-1, shape["vocab"]), tokens[:, 1:].reshape(-1)
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.detach().item()

  for _ in range(2):
    step()
  best = math.inf
  for _ in range(steps):
    start = time.perf_counter()
    step()
    best = min(best, time.perf_counter() - start)
  return {
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
    "step_s": best,
    "tokens_per_s": shape["batch"] * shape["seq"] / best,
    "params": sum(p.numel() for p in model.parameters()),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--json", action="store_true")
  args = parser.parse_args()
  try:
    import torch  # noqa: F401
  except ImportError:
    print("torch_reference: PyTorch is not installed; skipped (pip install torch)")
    if args.json:
      print(json.dumps(None))
    return
  row = tokens_per_second(args.steps)
  print(json.dumps(row) if args.json else row)


if __name__ == "__main__":
  sys.exit(main())
